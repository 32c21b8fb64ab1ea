package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/daemon"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The live demo's fleet split: ups-a's BMSs speak Modbus TCP, ups-b's
// gateway publishes MQTT.
const (
	demoModbusUPS = "ups-a"
	demoMQTTUPS   = "ups-b"
	demoProfile   = "soltaro_single_rack_vc"
)

// demoConfig is the daemon configuration the live demo writes: the two
// racks of ups-a polled over Modbus, ups-b subscribed over MQTT in the
// reference JSON layout (docs/mqtt.md), the simulated inventory.
const demoConfig = `# Written by cellwarden demo: the configuration a real deployment of this
# fleet would use (only the addresses are loopback).
inventory: inventory.yaml
collectors:
  modbus:
    - {name: ups-a-rack-1, address: "%[1]s", unit: 1, profile: %[3]s, modules: %[4]d, ups: ups-a, string: "1", interval: 1s, timeout: 500ms}
    - {name: ups-a-rack-2, address: "%[1]s", unit: 2, profile: %[3]s, modules: %[4]d, ups: ups-a, string: "2", interval: 1s, timeout: 500ms}
  mqtt:
    - name: ups-b-gateway
      broker: tcp://%[2]s
      client_id: cellwarden-demo
      qos: 1
      subscriptions:
        - topic: bms/{ups}/{string}/{module}
          time_field: time
          fields:
            - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
        - topic: bms/{ups}/{string}
          time_field: time
          fields:
            - {path: string_voltage_volts, metric: string_voltage_volts}
            - {path: string_current_amperes, metric: string_current_amperes}
            - {path: string_soc_ratio, metric: string_soc_ratio}
        - topic: bms/{ups}
          time_field: time
          fields:
            - {path: ambient_temperature_celsius, metric: ambient_temperature_celsius}
`

// runDemoLive runs the demo as a real deployment in one process: the
// simulator serves ups-a over Modbus TCP and publishes ups-b to an
// embedded MQTT broker, both on loopback, and `serve` polls and subscribes
// to them. The scenario plays at o.speed × real time; the daemon's event
// clock follows the scenario's, so the detector judges it exactly as in
// real time. It stops at the scenario's end or on Ctrl-C.
func runDemoLive(o demoOptions, stdout io.Writer, log *zap.Logger) error {
	if o.speed <= 0 {
		return errors.New("--speed must be > 0")
	}
	sc := demoScenario()
	labels, inv, err := sim.Run(sc, io.Discard)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cellwarden-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var invYAML bytes.Buffer
	if err := sim.WriteInventory(&invYAML, inv); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), invYAML.Bytes(), 0o644); err != nil {
		return err
	}

	// The Modbus side: ups-a's racks in a vendor layout.
	var modbusFleet []sim.UPSSpec
	modules := 0
	for _, u := range sc.Fleet {
		if u.Name == demoModbusUPS {
			modbusFleet, modules = append(modbusFleet, u), u.Modules
		}
	}
	rb, err := newRackBank(modbusFleet, demoProfile)
	if err != nil {
		return err
	}
	modbusAddr, err := freeLoopback()
	if err != nil {
		return err
	}
	stopModbus, err := serveBank(modbusAddr, rb.bank, log.Named("sim"))
	if err != nil {
		return err
	}
	defer stopModbus()

	// The MQTT side: an embedded broker, published to in-process.
	broker, brokerAddr, err := startDemoBroker()
	if err != nil {
		return err
	}
	defer broker.Close()

	cfgPath := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, demoConfig, modbusAddr, brokerAddr, demoProfile, modules), 0o644); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("the demo's web address %s: %w (choose another with --web.listen-address)", o.listen, err)
	}
	url := "http://" + ln.Addr().String()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	wallStart := time.Now()
	clock := func() time.Time {
		return sc.Start.Add(time.Duration(float64(time.Since(wallStart)) * o.speed))
	}
	fmt.Fprintf(stdout, `cellwarden demo: a live deployment on loopback, %gx real time (%s of simulated time in %s).
  %s: 2 racks served by the simulator over Modbus TCP on %s (%s layout), polled by cellwarden
  %s: published by the simulator to an embedded MQTT broker on %s, subscribed by cellwarden
  configuration: %s
  what happens (simulated time from 00:00):
`, o.speed, sc.Duration, time.Duration(float64(sc.Duration)/o.speed).Round(time.Second),
		demoModbusUPS, modbusAddr, demoProfile, demoMQTTUPS, brokerAddr, cfgPath)
	for _, h := range happenings(labels) {
		fmt.Fprintln(stdout, "    "+h)
	}
	fmt.Fprintf(stdout, `
  status page: %s/
  metrics:     %s/metrics
Alerts appear in the log below and on the status page as they fire. Ctrl-C stops the demo.

`, url, url)

	done := make(chan error, 1)
	dctx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	go func() {
		done <- daemon.Run(dctx, daemon.Options{ConfigPath: cfgPath, StateDir: filepath.Join(dir, "state"),
			Web: demoWebFlags(ln.Addr().String()), Listener: ln, Log: log, Clock: clock,
			SnapshotInterval: time.Minute, ShutdownTimeout: 5 * time.Second})
	}()

	batch := newJSONBatch("bms")
	publish := func(topic string, payload []byte) {
		if err := broker.Publish(topic, payload, false, 1); err != nil {
			log.Warn("demo publish failed", zap.String("topic", topic), zap.Error(err))
		}
	}
	playCtx, stopPlay := context.WithCancel(ctx)
	defer stopPlay()
	played := make(chan error, 1)
	go func() {
		_, err := playFrom(playCtx, sc, o.speed, wallStart, func() error { batch.flush(publish); return nil },
			func(s telemetry.Sample, e telemetry.Entity) error {
				switch e.UPS {
				case demoModbusUPS:
					rb.set(s, e)
				case demoMQTTUPS:
					return batch.add(s, e)
				}
				return nil
			})
		played <- err
	}()
	select {
	case err := <-played:
		if err != nil {
			stopDaemon()
			<-done
			return err
		}
		fmt.Fprintf(stdout, "\nThe scenario has played to its end; stopping. Run it again, or point `cellwarden serve` at your own BMSs.\n")
		stopDaemon()
		return <-done
	case err := <-done:
		stopPlay()
		<-played
		return err
	}
}

// happenings lists a scenario's events and faults for people, in time
// order.
func happenings(labels *sim.Labels) []string {
	var out []string
	for _, e := range labels.Events {
		out = append(out, fmt.Sprintf("%s  %s on %s (normal: must not page)", e.Start.Format("15:04"), e.Kind, e.UPS))
	}
	for _, f := range labels.Faults {
		ent := telemetry.Entity{UPS: f.UPS, String: f.String, Module: f.Module, Cell: f.Cell}
		crit := ""
		if f.CriticalTime != nil {
			crit = fmt.Sprintf("; reaches 80 °C at %s", f.CriticalTime.Format("15:04"))
		}
		out = append(out, fmt.Sprintf("%s  %s on %s%s", f.Onset.Format("15:04"), f.Class, ent.Path(), crit))
	}
	slices.Sort(out)
	return out
}

// freeLoopback returns a loopback address with a port free right now.
func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startDemoBroker starts an embedded MQTT broker on a free loopback port
// that accepts any client (loopback only) and can be published to
// in-process.
func startDemoBroker() (*mochi.Server, string, error) {
	addr, err := freeLoopback()
	if err != nil {
		return nil, "", err
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, "", err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "demo", Address: addr})); err != nil {
		return nil, "", err
	}
	if err := srv.Serve(); err != nil {
		return nil, "", err
	}
	return srv, addr, nil
}

// demoWebFlags are the web flags of a demo daemon: plain HTTP on addr.
func demoWebFlags(addr string) *web.FlagConfig {
	addrs, socket, file := []string{addr}, false, ""
	return &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &socket, WebConfigFile: &file}
}
