package sunspec

import (
	"slices"
	"strings"
	"testing"
)

// alarmModels decodes 802 (batteryInst: Evt1 OVER_TEMP_ALARM and
// CONTACTOR_ERROR set, Evt2 not implemented, EvtVnd1 as given), an 803 of
// two strings (string 2 with GROUND_FAULT) and an 804 with Idx idx (0: not
// implemented) and OVER_VOLT_ALARM.
func alarmModels(t *testing.T, vnd1 float64, idx float64) []Model {
	t.Helper()
	bat := batteryInst()
	bat.Values["EvtVnd1"] = vnd1
	bank := Instance{Values: map[string]float64{"NStrCon": 2, "CellV_SF": -3, "ModTmp_SF": -1, "A_SF": -1, "SoC_SF": 0},
		Groups: map[string][]Instance{"string": {
			{Values: map[string]float64{"StrNMod": 8, "StrEvt1": 0}},
			{Values: map[string]float64{"StrNMod": 8, "StrEvt1": 1 << 22}},
		}}}
	str := stringInst(idx, 1)
	str.Values["Evt1"] = 1 << 9
	if idx == 0 {
		delete(str.Values, "Idx")
	}
	var out []Model
	for _, m := range []struct {
		id uint16
		in Instance
	}{{ModelBattery, bat}, {ModelLithiumIonBank, bank}, {ModelLithiumIonString, str}} {
		d, err := Decode(m.id, encode(t, m.id, m.in))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// active lists the set alarms as "string/name".
func active(as []Alarm) []string {
	var out []string
	for _, a := range as {
		if a.Active {
			out = append(out, a.String+"/"+a.Name())
		}
	}
	return out
}

// The event bits of 802, 803 (per string of the bank) and 804 come out
// with the names the models give them, set or not (the RESERVED_ bits
// left out); of the fields the models leave unnamed (EvtVnd1), the set
// bits only; of a field not implemented (Evt2), nothing.
func TestAlarms(t *testing.T) {
	as := Alarms(alarmModels(t, 1<<3, 2))
	want := []string{"/802.Evt1.OVER_TEMP_ALARM", "/802.Evt1.CONTACTOR_ERROR", "/802.EvtVnd1.bit3",
		"2/803.StrEvt1.GROUND_FAULT", "2/804.Evt1.OVER_VOLT_ALARM"}
	if got := active(as); !slices.Equal(got, want) {
		t.Errorf("active alarms %q, want %q", got, want)
	}
	count := map[string]int{}
	for _, a := range as {
		count[a.String+"/"+a.Point]++
		if a.Point == "Evt2" || strings.HasPrefix(a.Symbol, "RESERVED") {
			t.Errorf("alarm %+v should not be listed", a)
		}
	}
	// 802 names 30 bits of Evt1 (one reserved), 803 and 804 30 (two
	// reserved); EvtVnd1 has one bit set, EvtVnd2 none.
	wantCount := map[string]int{"/Evt1": 29, "/EvtVnd1": 1, "1/StrEvt1": 28, "2/StrEvt1": 28, "2/Evt1": 28}
	for k, n := range wantCount {
		if count[k] != n {
			t.Errorf("%d alarms of %s, want %d (all: %v)", count[k], k, n, count)
		}
	}
	if len(count) != len(wantCount) {
		t.Errorf("alarms of %v, want only %v", count, wantCount)
	}
	i := slices.IndexFunc(as, func(a Alarm) bool { return a.Name() == "802.Evt1.OVER_TEMP_ALARM" })
	if a := as[i]; a.Model != 802 || a.Point != "Evt1" || a.Bit != 1 || a.Symbol != "OVER_TEMP_ALARM" {
		t.Errorf("OVER_TEMP_ALARM: %+v", a)
	}
}

// A device names the string of an 804 without Idx by its configured
// string, and keeps an unnamed bit it saw set listed, as clear, once the
// device clears it.
func TestDeviceAlarms(t *testing.T) {
	d := &Device{String: "7"}
	as := d.alarms(alarmModels(t, 1<<3, 0))
	if got := active(as); !slices.Contains(got, "7/804.Evt1.OVER_VOLT_ALARM") || !slices.Contains(got, "/802.EvtVnd1.bit3") {
		t.Errorf("active alarms %q: want 804's with string 7 and the vendor bit", got)
	}
	as = d.alarms(alarmModels(t, 0, 0))
	i := slices.IndexFunc(as, func(a Alarm) bool { return a.Name() == "802.EvtVnd1.bit3" })
	if i < 0 || as[i].Active || as[i].String != "" {
		t.Fatalf("after the vendor bit cleared: %+v, want it listed as clear", as)
	}
	if slices.Contains(active(as), "/802.EvtVnd1.bit3") {
		t.Error("the cleared vendor bit is still active")
	}
}
