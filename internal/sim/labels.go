package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Fault classes of the ground truth.
const (
	ClassThermalRunaway = "thermal_runaway" // internal-short precursor, then runaway
	ClassModuleHotspot  = "module_hotspot"  // one module heats (loose busbar, failed fan)
	ClassCoolingFailure = "cooling_failure" // the room of a whole UPS warms
	ClassSensorStuck    = "sensor_stuck"    // a sensor repeats one value
	ClassSensorSpikes   = "sensor_spikes"   // a sensor jumps by tens of degrees now and then
	ClassSensorSentinel = "sensor_sentinel" // a sensor reports 6553.5 °C or 65.535 V
	ClassSensorNoisy    = "sensor_noisy"    // a sensor's noise grows tenfold
	ClassWeakCell       = "weak_cell"       // a self-discharging cell drifts low
	ClassOvercharge     = "overcharge"      // a charger holds a string above its limit
	ClassLostTelemetry  = "lost_telemetry"  // a module, string or UPS stops reporting
)

// Classes lists every fault class, in the order reports show them.
func Classes() []string {
	return []string{ClassThermalRunaway, ClassModuleHotspot, ClassCoolingFailure, ClassSensorStuck,
		ClassSensorSpikes, ClassSensorSentinel, ClassSensorNoisy, ClassWeakCell, ClassOvercharge, ClassLostTelemetry}
}

// Battery states of the age ground truth.
const (
	StateOK        = "ok"
	StateSoon      = "soon"        // a life date falls within the horizon (180 days)
	StateEndOfLife = "end_of_life" // past design life, warranty, replace_by, or SOH below 0.80
)

// Labels is the ground truth of one scenario, written as labels.json next
// to its telemetry.
type Labels struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	// Physics names the knobs that differ from the standard physics, as
	// cellwarden sim scenarios --physics reads them; empty (and left out)
	// for the standard physics.
	Physics string    `json:"physics,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// IntervalSeconds is the poll interval of the telemetry.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Cells and CellDays size the scenario for false-alarm rates.
	Cells    int     `json:"cells"`
	CellDays float64 `json:"cell_days"`
	// Faults are what an operator should be told about.
	Faults []FaultLabel `json:"faults"`
	// Events are normal operations that must not page (discharge tests,
	// utility blips, HVAC setpoint changes).
	Events []EventLabel `json:"events"`
	// Batteries is the age and health verdict of every string.
	Batteries []BatteryLabel `json:"batteries"`
}

// Entity names a node of the hierarchy; finer fields are empty for coarser
// entities.
type Entity struct {
	UPS    string `json:"ups"`
	String string `json:"string,omitempty"`
	Module string `json:"module,omitempty"`
	Cell   string `json:"cell,omitempty"`
}

// FaultLabel is one injected fault.
type FaultLabel struct {
	ID    string `json:"id"`
	Class string `json:"class"`
	Entity
	// Onset is when the fault starts to show in the physics; End when it
	// stops (the scenario end for faults that never stop).
	Onset time.Time `json:"onset"`
	End   time.Time `json:"end"`
	// CriticalTime, for thermal runaway, is when the cell's true
	// temperature first reaches 80 °C.
	CriticalTime *time.Time `json:"critical_time,omitempty"`
	// Detail describes the parameters for people.
	Detail string `json:"detail,omitempty"`
}

// EventLabel is one normal operation.
type EventLabel struct {
	Kind string `json:"kind"` // discharge_test, utility_blip, hvac_setpoint
	Entity
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// BatteryLabel is the age verdict of one string.
type BatteryLabel struct {
	UPS     string   `json:"ups"`
	String  string   `json:"string"`
	State   string   `json:"state"`
	Reasons []string `json:"reasons,omitempty"` // design_life, warranty, replace_by, soh
}

// ReadLabels reads a labels.json file.
func ReadLabels(path string) (*Labels, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Labels
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &l, nil
}

// WriteLabels writes l as indented JSON.
func WriteLabels(path string, l *Labels) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
