package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	sv "github.com/simonvetter/modbus"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type simServeOptions struct {
	modbus   string
	profile  string
	scenario string
	seed     uint64
	speed    float64
	pub      simPublishOptions // with --mqtt: publish the fleet too
}

// runSimServeAndPublish is `sim serve`: the scenario over Modbus TCP
// (--modbus), published to an MQTT broker (--mqtt), or both at once, each
// playing the same scenario from the same start.
func runSimServeAndPublish(o simServeOptions, stdout io.Writer, log *zap.Logger) error {
	o.pub.scenario, o.pub.seed, o.pub.speed = o.scenario, o.seed, o.speed
	switch {
	case o.modbus == "" && o.pub.broker == "":
		return errors.New("give --modbus ADDRESS, --mqtt URL or both")
	case o.pub.broker == "":
		return runSimServe(o, stdout, log)
	case o.modbus == "":
		return runSimPublish(o.pub, stdout, log)
	}
	var mu sync.Mutex // the two write their banners to one stdout
	out := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stdout.Write(p)
	})
	errs := make(chan error, 2)
	go func() { errs <- runSimServe(o, out, log.Named("modbus")) }()
	go func() { errs <- runSimPublish(o.pub, out, log.Named("mqtt")) }()
	return errors.Join(<-errs, <-errs)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// runSimServe plays a scenario's telemetry in (scaled) real time and serves
// it over Modbus TCP in a vendor register layout: one unit id per battery
// string, in the order the scenario's fleet lists them. After the scenario
// ends the last values stay served until the process is stopped.
func runSimServe(o simServeOptions, stdout io.Writer, log *zap.Logger) error {
	suite := sim.Suite(o.seed)
	i := slices.IndexFunc(suite, func(s *sim.Scenario) bool { return s.Name == o.scenario })
	if i < 0 {
		return fmt.Errorf("no scenario %q (see cellwarden sim list)", o.scenario)
	}
	sc := suite[i]
	if o.speed <= 0 {
		return errors.New("--speed must be > 0")
	}
	if o.profile == "sunspec" {
		return runSimServeSunSpec(sc, o, stdout, log)
	}
	rb, err := newRackBank(sc.Fleet, o.profile)
	if err != nil {
		return err
	}
	bank := rb.bank
	stopServer, err := serveBank(o.modbus, bank, log)
	if err != nil {
		return err
	}
	defer stopServer()
	fmt.Fprintf(stdout, "serving scenario %s (%s) over Modbus TCP on %s, %s layout, %gx real time\n",
		sc.Name, sc.Description, o.modbus, o.profile, o.speed)
	for _, k := range rb.order {
		fmt.Fprintf(stdout, "  unit %d: ups %s string %s\n", rb.devices[k].unit, k[0], k[1])
	}
	for _, n := range rb.notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	finished, err := play(ctx, sc, o.speed, nil, func(s telemetry.Sample, ent telemetry.Entity) error {
		rb.set(s, ent)
		return nil
	})
	if err != nil || !finished {
		return err
	}
	log.Info("scenario played to its end; serving the last values until stopped",
		zap.String("scenario", sc.Name), zap.Int("readings_without_register", rb.unplaced))
	<-ctx.Done()
	return nil
}

// rackBank serves a fleet in a vendor rack layout: one register map and
// unit id per battery string, in fleet order, arrays sized to the string's
// modules.
type rackBank struct {
	bank     *modbus.Bank
	devices  map[[2]string]rackDevice
	order    [][2]string
	unplaced int // readings the layout has no register for
	// notes say which cells of the fleet the layout cannot hold.
	notes []string
}

type rackDevice struct {
	unit uint8
	m    *modbus.Map
}

func newRackBank(fleet []sim.UPSSpec, profile string) (*rackBank, error) {
	rb := &rackBank{bank: modbus.NewBank(false), devices: map[[2]string]rackDevice{}}
	for _, u := range fleet {
		for s := 1; s <= u.Strings; s++ {
			m, err := modbus.Profile(profile)
			if err != nil {
				return nil, err
			}
			m.SetModules(u.Modules)
			key := [2]string{u.Name, fmt.Sprint(s)}
			if len(rb.devices) >= 247 {
				return nil, errors.New("more than 247 strings: one Modbus unit id each")
			}
			d := rackDevice{unit: uint8(len(rb.devices) + 1), m: m}
			rb.devices[key] = d
			rb.order = append(rb.order, key)
			rb.bank.Fill(d.unit, m)
			if holds := cellsPerModule(m); holds < u.Cells && s == 1 {
				rb.notes = append(rb.notes, fmt.Sprintf("the %s layout holds %d cells per module: cells %d-%d of %s's modules are not served",
					profile, holds, holds+1, u.Cells, u.Name))
			}
			// Cell positions the layout has beyond the string's cells read
			// "no reading", as a BMS reports an absent sensor.
			for mod := 1; mod <= u.Modules; mod++ {
				for _, metric := range []telemetry.Metric{telemetry.CellVoltageVolts, telemetry.CellTemperatureCelsius} {
					for c := u.Cells + 1; ; c++ {
						addr, words, ok := m.Encode(metric, strconv.Itoa(mod), strconv.Itoa(c), math.NaN())
						if !ok {
							break
						}
						rb.bank.Set(d.unit, addr, words)
					}
				}
			}
		}
	}
	return rb, nil
}

// cellsPerModule is how many cell voltages a layout holds per module.
func cellsPerModule(m *modbus.Map) int {
	n := 0
	for {
		if _, _, ok := m.Encode(telemetry.CellVoltageVolts, "1", strconv.Itoa(n+1), 0); !ok {
			return n
		}
		n++
	}
}

// set writes one reading into its string's registers.
func (rb *rackBank) set(s telemetry.Sample, ent telemetry.Entity) {
	dev, ok := rb.devices[[2]string{ent.UPS, ent.String}]
	if !ok {
		return // UPS-level readings (ambient) have no place in a rack BMS layout
	}
	addr, words, ok := dev.m.Encode(s.Metric, ent.Module, ent.Cell, s.Value)
	if !ok {
		rb.unplaced++
		return
	}
	rb.bank.Set(dev.unit, addr, words)
}

func log2discard() *log.Logger { return log.New(io.Discard, "", 0) }

// runSimServeSunSpec serves the scenario as SunSpec devices, one unit per
// UPS, re-laid out at every poll time.
func runSimServeSunSpec(sc *sim.Scenario, o simServeOptions, stdout io.Writer, log *zap.Logger) error {
	if len(sc.Fleet) > 247 {
		return errors.New("more than 247 UPSs: one Modbus unit id each")
	}
	bank := modbus.NewBank(false)
	fleet := newSunSpecFleet(sc)
	if err := fleet.publish(bank); err != nil {
		return err
	}
	stopServer, err := serveBank(o.modbus, bank, log)
	if err != nil {
		return err
	}
	defer stopServer()
	fmt.Fprintf(stdout, "serving scenario %s (%s) over Modbus TCP on %s, SunSpec layout, %gx real time\n",
		sc.Name, sc.Description, o.modbus, o.speed)
	for _, l := range sunspecUnits(sc) {
		fmt.Fprintln(stdout, "  "+l)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A poll's readings are published together once the next poll begins.
	finished, err := play(ctx, sc, o.speed, func() error { return fleet.publish(bank) },
		func(s telemetry.Sample, ent telemetry.Entity) error {
			fleet.observe(ent, s.Metric, s.Value)
			return nil
		})
	if err != nil || !finished {
		return err
	}
	if err := fleet.publish(bank); err != nil {
		return err
	}
	log.Info("scenario played to its end; serving the last values until stopped", zap.String("scenario", sc.Name))
	<-ctx.Done()
	return nil
}

// serveBank serves bank over Modbus TCP on addr. The returned function stops
// the server and logs the requests it answered.
func serveBank(addr string, bank *modbus.Bank, log *zap.Logger) (stop func(), err error) {
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 16,
		Logger: log2discard()}, bank)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("serving Modbus on %s: %w", addr, err)
	}
	return func() {
		srv.Stop()
		reads, writes := bank.Requests()
		log.Info("stopped", zap.Any("read_requests_by_function", reads), zap.Uint64("refused_writes", writes))
	}, nil
}

// play generates the scenario's telemetry and hands each sample to each at
// its moment, scaled by speed from the wall clock at the call. newPoll (may
// be nil) runs as soon as a sample from a later poll time is read, before
// waiting for it. play reports whether the scenario was played to its end
// (false when ctx ended first).
func play(ctx context.Context, sc *sim.Scenario, speed float64, newPoll func() error,
	each func(telemetry.Sample, telemetry.Entity) error) (finished bool, err error) {
	return playFrom(ctx, sc, speed, time.Now(), newPoll, each)
}

// playFrom is play with the scenario's start at wallStart.
func playFrom(ctx context.Context, sc *sim.Scenario, speed float64, wallStart time.Time, newPoll func() error,
	each func(telemetry.Sample, telemetry.Entity) error) (finished bool, err error) {
	pr, pw := io.Pipe()
	defer pr.Close() // unblocks the generator when we stop early
	go func() {
		_, _, err := sim.Run(sc, pw)
		pw.CloseWithError(err)
	}()
	reg := telemetry.NewRegistry()
	rd, err := csvfile.NewReader(pr, sc.Name, reg)
	if err != nil {
		return false, err
	}
	var pollTime int64
	for {
		s, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if newPoll != nil && s.Time > pollTime && pollTime != 0 {
			if err := newPoll(); err != nil {
				return false, err
			}
		}
		pollTime = s.Time
		due := wallStart.Add(time.Duration(float64(s.Timestamp().Sub(sc.Start)) / speed))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return false, nil
			case <-time.After(d):
			}
		}
		if err := each(s, reg.Info(s.Entity).Entity); err != nil {
			return false, err
		}
	}
}
