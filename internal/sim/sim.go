// Package sim simulates a data-center battery fleet: UPS > strings >
// modules > cells, NMC and LFP, with the physics real fleets show (room air
// with a daily cycle and HVAC cycling, cells following it with a thermal
// time constant, position and cell offsets, Joule heating under load,
// balancing wander of cell voltages, sensor noise and quantisation, missing
// values and poll gaps), normal events that must not page (discharge tests,
// utility blips, HVAC setpoint changes) and labelled faults.
//
// A Scenario is seeded and deterministic: the same scenario and seed give
// the same bytes. Run writes the telemetry CSV of interfaces.md §1 and
// returns the ground truth (Labels) and the inventory (interfaces.md §2).
package sim

import (
	"bufio"
	"cmp"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// UPSSpec describes one UPS, its battery strings and what the inventory
// says about them.
type UPSSpec struct {
	Name      string
	Chemistry inventory.Chemistry
	Strings   int
	Modules   int // per string
	Cells     int // per module
	// TempQuantum is the resolution of the BMS temperature sensors (0.1 or
	// 1 °C).
	TempQuantum float64
	// VoltQuantum is the resolution of its cell voltage sensors (V; 0:
	// 1 mV).
	VoltQuantum float64
	// Inventory facts, written to the inventory file.
	Vendor, Model           string
	Manufactured, Installed time.Time
	DesignLifeYears         float64
	WarrantyUntil           time.Time // zero: none
	ReplaceBy               time.Time // zero: none
	// SOH is every string's state of health; SOHFall, when set, makes one
	// string's SOH fall linearly over the scenario.
	SOH     float64
	SOHFall *SOHFall
}

// SOHFall is a string whose state of health declines during the scenario.
type SOHFall struct {
	String   string
	From, To float64
}

// Event kinds: normal operations that must not page.
const (
	EventDischargeTest = "discharge_test" // the UPS runs on battery for a test, then recharges
	EventUtilityBlip   = "utility_blip"   // a short mains outage
	EventHVACSetpoint  = "hvac_setpoint"  // the room's setpoint changes for good
)

// EventSpec is one normal operation on a UPS (all its strings).
type EventSpec struct {
	Kind     string
	UPS      string
	At       time.Duration // from the scenario start
	Duration time.Duration // discharge and blip length
	CRate    float64       // discharge current in C
	Delta    float64       // setpoint change, °C
}

// FaultSpec is one fault to inject. Which fields matter depends on the
// class (see the Class constants); Magnitude and Rate are class-specific.
type FaultSpec struct {
	Class                     string
	UPS, String, Module, Cell string
	At                        time.Duration // onset from the scenario start
	Duration                  time.Duration // 0: until the scenario ends
	// Thermal runaway: Magnitude is the precursor's extra heat (°C) at the
	// end of its Duration, SagVolts the voltage sag then, Rate the
	// e-folding time of the acceleration that follows (minutes).
	// Hotspot and cooling failure: Magnitude °C. Weak cell: Rate mV per
	// hour. Overcharge: Magnitude volts. Sensor noise: Magnitude °C (σ).
	// Sensor spikes: Rate is the share of readings that spike. Sensor
	// sentinel on a temperature sensor: Magnitude is the reading it
	// reports (0: 6553.5, the register's raw sentinel; an error code such
	// as 127 or 85 °C otherwise).
	Magnitude float64
	SagVolts  float64
	Rate      float64
	// Volts targets the voltage sensor instead of the temperature sensor
	// (sensor faults).
	Volts bool
}

// Scenario is a whole simulation.
type Scenario struct {
	Name        string
	Description string
	Seed        uint64
	Start       time.Time
	Duration    time.Duration
	Interval    time.Duration
	Fleet       []UPSSpec
	Events      []EventSpec
	Faults      []FaultSpec
	// MissingRate is the share of values reported empty ("no reading");
	// GapRate the share of UPS polls that never arrive.
	MissingRate, GapRate float64
	// Physics changes the physics for robustness studies; the zero value
	// is the standard physics.
	Physics Physics
}

// Validate checks what Run relies on.
func (sc *Scenario) Validate() error {
	switch {
	case sc.Interval < time.Second || sc.Interval > time.Minute:
		return fmt.Errorf("scenario %s: interval %v outside 1s..60s", sc.Name, sc.Interval)
	case sc.Duration <= 0:
		return fmt.Errorf("scenario %s: duration must be positive", sc.Name)
	case len(sc.Fleet) == 0:
		return fmt.Errorf("scenario %s: empty fleet", sc.Name)
	}
	if err := sc.Physics.validate(); err != nil {
		return fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	for _, u := range sc.Fleet {
		if _, ok := ocvCurves[u.Chemistry]; !ok {
			return fmt.Errorf("scenario %s: ups %s: chemistry %v not simulated", sc.Name, u.Name, u.Chemistry)
		}
		if u.Strings < 1 || u.Modules < 1 || u.Cells < 1 {
			return fmt.Errorf("scenario %s: ups %s: empty topology", sc.Name, u.Name)
		}
	}
	return nil
}

// Cells returns the number of cells in the fleet.
func (sc *Scenario) Cells() int {
	n := 0
	for _, u := range sc.Fleet {
		n += u.Strings * u.Modules * u.Cells
	}
	return n
}

type cellSim struct {
	temp      float64 // true temperature
	offT      float64 // fixed offset from the module's air
	offV      float64 // fixed voltage offset
	wander    float64 // balancing wander, volts (Ornstein-Uhlenbeck)
	resist    float64 // internal resistance factor
	stuckT    float64 // value a stuck temperature sensor repeats (NaN: none yet)
	stuckV    float64
	tau       float64 // thermal time constant, seconds
	vented    bool    // past ventCelsius: sensors destroyed
	sagV      float64
	faultHeat float64
}

type stringSim struct {
	soc, current float64 // C-rate, + charging
	offT         float64
	recharging   bool
	modules      [][]cellSim
}

type upsSim struct {
	spec       *UPSSpec
	strings    []stringSim
	coolExcess float64 // room heating from a cooling failure, °C
	setpoint   float64
	roomPhase  float64
}

// faultState tracks one fault during the run.
type faultState struct {
	spec     *FaultSpec
	label    *FaultLabel
	onset    int64 // seconds from start
	end      int64
	accelAt  int64 // runaway: when acceleration starts
	critical bool
	// heat and sag are a runaway's self-heating (°C at equilibrium) and
	// voltage sag now (advanceRunaways).
	heat, sag float64
}

// Run simulates sc and writes its telemetry CSV to w. It returns the
// ground truth and the inventory the scenario's facilities team keeps.
func Run(sc *Scenario, w io.Writer) (*Labels, *inventory.Inventory, error) {
	if err := sc.Validate(); err != nil {
		return nil, nil, err
	}
	sc = sc.Physics.apply(sc)
	if err := sc.Validate(); err != nil {
		return nil, nil, err
	}
	phy := &sc.Physics
	h := fnv.New64a()
	h.Write([]byte(sc.Name))
	rng := rand.New(rand.NewPCG(sc.Seed, h.Sum64()))
	// Draws that only other physics needs come from a stream of their own,
	// so that the main stream is the same whatever the physics.
	prng := rand.New(rand.NewPCG(sc.Seed, h.Sum64()^0x9b4a5e1c3f27d860))
	cellTau := float64(thermalTauSeconds) * cmp.Or(phy.TauScale, 1)
	offScale := cmp.Or(phy.OffsetScale, 1)
	labels := &Labels{
		Scenario: sc.Name, Seed: sc.Seed, Physics: phy.String(), Start: sc.Start.UTC(), End: sc.Start.Add(sc.Duration).UTC(),
		IntervalSeconds: sc.Interval.Seconds(), Cells: sc.Cells(),
		CellDays: float64(sc.Cells()) * sc.Duration.Hours() / 24,
		Faults:   []FaultLabel{}, Events: []EventLabel{}, Batteries: []BatteryLabel{},
	}
	fleet := make([]upsSim, len(sc.Fleet))
	for ui := range sc.Fleet {
		u := &sc.Fleet[ui]
		us := &fleet[ui]
		us.spec, us.setpoint, us.roomPhase = u, 22+rng.Float64()*2, rng.Float64()*2*math.Pi
		us.strings = make([]stringSim, u.Strings)
		for si := range us.strings {
			ss := &us.strings[si]
			ss.soc, ss.offT = floatSOC, rng.NormFloat64()*0.3
			ss.modules = make([][]cellSim, u.Modules)
			for mi := range ss.modules {
				ss.modules[mi] = make([]cellSim, u.Cells)
				for ci := range ss.modules[mi] {
					ss.modules[mi][ci] = cellSim{
						offT: rng.NormFloat64() * 0.35 * offScale, offV: rng.NormFloat64() * 0.003 * offScale,
						resist: max(0.2, 1+rng.NormFloat64()*0.08*cmp.Or(phy.ResistScale, 1)), stuckT: math.NaN(), stuckV: math.NaN(), temp: math.NaN(),
						tau: cellTau,
					}
					if phy.TauSpread > 0 {
						ss.modules[mi][ci].tau *= 1 + phy.TauSpread*(2*prng.Float64()-1)
					}
				}
			}
		}
	}
	// Faults that would start after the scenario ends never happen.
	var specs []*FaultSpec
	for i := range sc.Faults {
		if sc.Faults[i].At < sc.Duration {
			specs = append(specs, &sc.Faults[i])
		}
	}
	faults := make([]faultState, len(specs))
	for i, f := range specs {
		end := sc.Duration
		if f.Duration > 0 && f.At+f.Duration < end {
			end = f.At + f.Duration
		}
		if f.Class == ClassThermalRunaway {
			end = sc.Duration // a runaway, once started, lasts the rest of the scenario
		}
		labels.Faults = append(labels.Faults, FaultLabel{
			ID: fmt.Sprintf("%s-f%d", sc.Name, i+1), Class: f.Class,
			Entity: Entity{UPS: f.UPS, String: f.String, Module: f.Module, Cell: f.Cell},
			Onset:  sc.Start.Add(f.At).UTC(), End: sc.Start.Add(end).UTC(), Detail: describe(f),
		})
		faults[i] = faultState{spec: f, onset: int64(f.At.Seconds()), end: int64(end.Seconds()),
			accelAt: int64((f.At + f.Duration).Seconds())}
	}
	for i := range faults {
		faults[i].label = &labels.Faults[i]
	}
	for _, e := range sc.Events {
		labels.Events = append(labels.Events, EventLabel{Kind: e.Kind, Entity: Entity{UPS: e.UPS},
			Start: sc.Start.Add(e.At).UTC(), End: sc.Start.Add(e.At + e.Duration).UTC()})
	}

	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString("time,ups,string,module,cell,metric,value\n")
	wr := &rowWriter{bw: bw}
	dt := sc.Interval.Seconds()
	noise := cmp.Or(phy.NoiseScale, 1)
	steps := int64(sc.Duration / sc.Interval)
	for step := int64(0); step <= steps; step++ {
		sec := int64(time.Duration(step) * sc.Interval / time.Second)
		now := sc.Start.Add(time.Duration(step) * sc.Interval)
		wr.ts = now.UTC().AppendFormat(wr.ts[:0], time.RFC3339)
		tod := float64(now.Unix()%86400) / 86400
		advanceRunaways(faults, sec, dt)
		for ui := range fleet {
			us := &fleet[ui]
			u := us.spec
			gap := rng.Float64() < sc.GapRate
			room := simulateRoom(sc, us, faults, sec, dt, tod)
			wr.emit = !gap && !lost(faults, sec, u.Name, "", "")
			wr.row(u.Name, "", "", "", "ambient_temperature_celsius", room+rng.NormFloat64()*0.05*noise, 1, rng, sc.MissingRate)
			for si := range us.strings {
				ss := &us.strings[si]
				sid := strconv.Itoa(si + 1)
				stepString(sc, u, ss, sec, dt)
				strOn := !gap && !lost(faults, sec, u.Name, sid, "")
				sum := 0.0
				for mi := range ss.modules {
					mid := strconv.Itoa(mi + 1)
					modOn := strOn && !lost(faults, sec, u.Name, sid, mid)
					air := room + 0.8 + 0.25*float64(mi) + ss.offT // top modules warmer
					mean := 0.0
					for ci := range ss.modules[mi] {
						c := &ss.modules[mi][ci]
						cid := strconv.Itoa(ci + 1)
						stepCell(sc, u, ss, c, faults, sec, dt, air, sid, mid, cid)
						mean += c.temp
						volt := ocv(u.Chemistry, ss.soc) + ss.current*internalVoltsPerC[u.Chemistry]*c.resist + c.offV + c.wander - c.sagV
						volt += overcharge(faults, sec, u.Name, sid)
						sum += volt
						t, v := readCell(c, faults, sec, rng, u, sid, mid, cid, volt, noise)
						wr.emit = modOn
						wr.row(u.Name, sid, mid, cid, "cell_temperature_celsius", t, tempPrec(u), rng, sc.MissingRate)
						wr.row(u.Name, sid, mid, cid, "cell_voltage_volts", v, 3, rng, sc.MissingRate)
					}
					mean /= float64(len(ss.modules[mi]))
					wr.emit = modOn
					wr.row(u.Name, sid, mid, "", "module_temperature_celsius",
						quantize(mean-0.8+rng.NormFloat64()*0.08*noise, u.TempQuantum), tempPrec(u), rng, sc.MissingRate)
				}
				wr.emit = strOn
				wr.row(u.Name, sid, "", "", "string_voltage_volts", sum, 1, rng, sc.MissingRate)
				wr.row(u.Name, sid, "", "", "string_current_amperes", ss.current*capacityAh+rng.NormFloat64()*0.05, 2, rng, sc.MissingRate)
				wr.row(u.Name, sid, "", "", "string_soc_ratio", ss.soc, 3, rng, sc.MissingRate)
				wr.row(u.Name, sid, "", "", "string_soh_ratio", soh(u, sid, sec, sc), 3, rng, sc.MissingRate)
			}
		}
		for i := range faults {
			fs := &faults[i]
			if fs.spec.Class == ClassThermalRunaway && fs.critical && fs.label.CriticalTime == nil {
				// The incident does not end: the cell vents, and what
				// follows belongs to it until the scenario ends.
				ct := now.UTC()
				fs.label.CriticalTime = &ct
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	labels.Batteries = batteryLabels(sc)
	return labels, fleetInventory(sc), nil
}

// capacityAh is every string's rated capacity.
const capacityAh = 100.0

// tempPrec is the number of decimals a UPS's temperature readings need:
// none for 1 °C sensors, one for 0.1 or 0.5 °C, one for unquantised values.
func tempPrec(u *UPSSpec) int {
	q := u.TempQuantum
	if q <= 0 {
		return 1
	}
	for p := 0; p < 3; p++ {
		if s := q * math.Pow10(p); math.Abs(s-math.Round(s)) < 1e-9 {
			return p
		}
	}
	return 3
}

// simulateRoom advances the room air of a UPS and returns its temperature.
func simulateRoom(sc *Scenario, us *upsSim, faults []faultState, sec int64, dt, tod float64) float64 {
	setpoint := us.setpoint
	for _, e := range sc.Events {
		if e.Kind == EventHVACSetpoint && e.UPS == us.spec.Name && sec >= int64(e.At.Seconds()) {
			setpoint += e.Delta
		}
	}
	excess := 0.0
	for i := range faults {
		f := &faults[i]
		if f.spec.Class == ClassCoolingFailure && f.spec.UPS == us.spec.Name && sec >= f.onset && sec < f.end {
			excess = f.spec.Magnitude
		}
	}
	tau := 30.0 * 60 // the room heats with the HVAC off ...
	if excess == 0 {
		tau = 20 * 60 // ... and cools when it is back
	}
	us.coolExcess = relax(us.coolExcess, excess, dt, tau*cmp.Or(sc.Physics.RoomTauScale, 1))
	daily := cmp.Or(sc.Physics.DailySwing, 1.2) * math.Sin(2*math.Pi*tod+us.roomPhase)
	hvacPeriod := 17.0 * 60
	hvac := cmp.Or(sc.Physics.HVACCycle, 0.4) * math.Sin(2*math.Pi*math.Mod(float64(sec), hvacPeriod)/hvacPeriod)
	return setpoint + daily + hvac + us.coolExcess
}

// stepString advances a string's current and state of charge.
func stepString(sc *Scenario, u *UPSSpec, ss *stringSim, sec int64, dt float64) {
	rate := 0.002 // float charge
	for _, e := range sc.Events {
		if e.UPS != u.Name || (e.Kind != EventDischargeTest && e.Kind != EventUtilityBlip) {
			continue
		}
		if sec >= int64(e.At.Seconds()) && sec < int64((e.At+e.Duration).Seconds()) {
			rate = -e.CRate
			ss.recharging = true
		}
	}
	if rate > 0 && ss.recharging {
		if ss.soc < floatSOC {
			rate = 0.2
		} else {
			ss.recharging = false
		}
	}
	ss.current = rate
	ss.soc = math.Min(floatSOC, math.Max(0.05, ss.soc+rate*dt/3600))
	if rate > 0.01 && ss.soc >= floatSOC {
		ss.recharging = false
	}
}

// advanceRunaways advances every started runaway's self-heating and sag.
func advanceRunaways(faults []faultState, sec int64, dt float64) {
	for i := range faults {
		f := &faults[i]
		s := f.spec
		if s.Class != ClassThermalRunaway || sec < f.onset {
			continue
		}
		if sec < f.accelAt {
			x := float64(sec-f.onset) / float64(f.accelAt-f.onset)
			f.heat = s.Magnitude * x * x
			f.sag = s.SagVolts * x
		} else {
			// Acceleration: the self-heating grows exponentially.
			f.heat *= math.Exp(dt / (s.Rate * 60))
			f.heat = math.Min(f.heat, 2000)
			f.sag = s.SagVolts * math.Min(20, f.heat/math.Max(s.Magnitude, 1))
		}
	}
}

// stepCell advances a cell's true temperature and fault state.
func stepCell(sc *Scenario, u *UPSSpec, ss *stringSim, c *cellSim, faults []faultState, sec int64, dt, air float64, sid, mid, cid string) {
	phy := &sc.Physics
	heat := jouleCelsiusPerC2 * cmp.Or(phy.JouleScale, 1) * ss.current * ss.current * c.resist
	c.sagV = 0
	var runaway *faultState
	for i := range faults {
		f := &faults[i]
		s := f.spec
		if s.UPS != u.Name || s.String != sid || sec < f.onset {
			continue
		}
		switch {
		case s.Class == ClassModuleHotspot && s.Module == mid && sec < f.end:
			heat += s.Magnitude * hotspotShape(phy, sec-f.onset)
		case s.Class == ClassModuleHotspot && phy.NeighbourHeat > 0 && sec < f.end && adjacent(s.Module, mid):
			heat += phy.NeighbourHeat * s.Magnitude * hotspotShape(phy, sec-f.onset)
		case s.Class == ClassThermalRunaway && s.Module == mid && s.Cell == cid:
			c.faultHeat, c.sagV = f.heat, f.sag
			heat += c.faultHeat
			runaway = f
		case s.Class == ClassThermalRunaway && s.Module == mid && phy.NeighbourHeat > 0:
			heat += phy.NeighbourHeat * f.heat
		case s.Class == ClassWeakCell && s.Module == mid && s.Cell == cid && sec < f.end:
			if phy.StepFaults {
				c.sagV = s.Rate / 1000 * float64(f.end-f.onset) / 3600
			} else {
				c.sagV = s.Rate / 1000 * float64(sec-f.onset) / 3600
			}
		}
	}
	tau := c.tau
	if c.faultHeat > 20 {
		tau = 10 * 60 // runaway heat is generated inside the cell
	}
	if math.IsNaN(c.temp) { // first step: start at equilibrium
		c.temp = air + c.offT + heat
	}
	c.temp = relax(c.temp, air+c.offT+heat, dt, tau)
	if runaway != nil && c.temp >= criticalCelsius {
		runaway.critical = true
	}
	if c.temp >= ventCelsius {
		c.vented = true
	}
	// Balancing wander: mean-reverting over about six hours.
	const tauW = 6 * 3600.0
	sigmaW := 0.002 * cmp.Or(phy.WanderScale, 1)
	c.wander += -c.wander*dt/tauW + sigmaW*math.Sqrt(2*dt/tauW)*normal(sc, sec, c)
}

// hotspotShape is how much of its heat a hot spot gives elapsed seconds
// after its onset: a 20-minute ramp, or all of it with StepFaults.
func hotspotShape(phy *Physics, elapsed int64) float64 {
	if phy.StepFaults {
		return 1
	}
	return math.Min(1, float64(elapsed)/1200)
}

// adjacent reports whether modules a and b sit next to each other.
func adjacent(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	return errA == nil && errB == nil && (x-y == 1 || y-x == 1)
}

// normal draws a deterministic standard normal for a cell's wander without
// touching the main random stream (so faults do not shift other values).
func normal(sc *Scenario, sec int64, c *cellSim) float64 {
	x := uint64(sec)*0x9e3779b97f4a7c15 ^ math.Float64bits(c.offT) ^ sc.Seed
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	u1 := (float64(x>>11) + 0.5) / (1 << 53)
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	u2 := (float64(x>>11) + 0.5) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// readCell turns a cell's true state into what its sensors report.
func readCell(c *cellSim, faults []faultState, sec int64, rng *rand.Rand, u *UPSSpec, sid, mid, cid string, volt, noise float64) (float64, float64) {
	t := c.temp + rng.NormFloat64()*0.08*noise
	v := volt + rng.NormFloat64()*0.0008*noise
	spike := rng.Float64()
	spikeSize := 20 + rng.Float64()*25
	noisy := rng.NormFloat64()
	for i := range faults {
		f := &faults[i]
		s := f.spec
		if s.UPS != u.Name || s.String != sid || s.Module != mid || s.Cell != cid || sec < f.onset || sec >= f.end {
			continue
		}
		switch s.Class {
		case ClassSensorStuck:
			if s.Volts {
				if math.IsNaN(c.stuckV) {
					c.stuckV = v
				}
				v = c.stuckV
			} else {
				if math.IsNaN(c.stuckT) {
					c.stuckT = t
				}
				t = c.stuckT
			}
		case ClassSensorSpikes:
			if spike < s.Rate {
				t += spikeSize
			}
		case ClassSensorSentinel:
			if s.Volts {
				v = 65.535
			} else {
				t = cmp.Or(s.Magnitude, 6553.5)
			}
		case ClassSensorNoisy:
			t += noisy * s.Magnitude
		}
	}
	if c.vented {
		return math.NaN(), math.NaN()
	}
	if v != 65.535 { // a sentinel is the register's raw value, on no step
		v = quantize(v, cmp.Or(u.VoltQuantum, 0.001))
	}
	return quantize(t, u.TempQuantum), v
}

func overcharge(faults []faultState, sec int64, ups, str string) float64 {
	for i := range faults {
		f := &faults[i]
		if f.spec.Class == ClassOvercharge && f.spec.UPS == ups && f.spec.String == str && sec >= f.onset && sec < f.end {
			return f.spec.Magnitude * math.Min(1, float64(sec-f.onset)/1800)
		}
	}
	return 0
}

func lost(faults []faultState, sec int64, ups, str, mod string) bool {
	for i := range faults {
		f := &faults[i]
		s := f.spec
		if s.Class == ClassLostTelemetry && sec >= f.onset && sec < f.end && s.UPS == ups && s.String == str && s.Module == mod {
			return true
		}
	}
	return false
}

func soh(u *UPSSpec, sid string, sec int64, sc *Scenario) float64 {
	if u.SOHFall != nil && u.SOHFall.String == sid {
		x := float64(sec) / sc.Duration.Seconds()
		return u.SOHFall.From + (u.SOHFall.To-u.SOHFall.From)*x
	}
	return u.SOH
}

// rowWriter formats rows without allocating.
type rowWriter struct {
	bw   *bufio.Writer
	ts   []byte
	line []byte
	emit bool
}

// row writes one reading (when emit is set). The random draw for a missing
// value happens either way, so silencing one entity leaves the others'
// values unchanged.
func (w *rowWriter) row(ups, str, mod, cell, metric string, v float64, prec int, rng *rand.Rand, missing float64) {
	miss := rng.Float64() < missing
	if !w.emit {
		return
	}
	w.line = append(w.line[:0], w.ts...)
	for _, f := range [...]string{ups, str, mod, cell, metric} {
		w.line = append(w.line, ',')
		w.line = append(w.line, f...)
	}
	w.line = append(w.line, ',')
	if !miss && !math.IsNaN(v) {
		w.line = strconv.AppendFloat(w.line, v, 'f', prec, 64)
	}
	w.line = append(w.line, '\n')
	w.bw.Write(w.line)
}

func describe(f *FaultSpec) string {
	switch f.Class {
	case ClassThermalRunaway:
		return fmt.Sprintf("precursor %v: +%.0f °C self-heating and %.0f mV sag, then acceleration (e-folding %.0f min)",
			f.Duration, f.Magnitude, f.SagVolts*1000, f.Rate)
	case ClassModuleHotspot, ClassCoolingFailure:
		return fmt.Sprintf("+%.0f °C", f.Magnitude)
	case ClassWeakCell:
		return fmt.Sprintf("self-discharge %.1f mV/h", f.Rate)
	case ClassOvercharge:
		return fmt.Sprintf("charger +%.2f V per cell", f.Magnitude)
	case ClassSensorNoisy:
		return fmt.Sprintf("noise sigma %.1f °C", f.Magnitude)
	case ClassSensorSpikes:
		return fmt.Sprintf("%.0f %% of readings spike by 20-45 °C", f.Rate*100)
	case ClassSensorSentinel, ClassSensorStuck:
		if f.Volts {
			return "voltage sensor"
		}
		if f.Class == ClassSensorSentinel && f.Magnitude != 0 {
			return fmt.Sprintf("temperature sensor reading %g °C", f.Magnitude)
		}
		return "temperature sensor"
	}
	return ""
}
