package sunspec

import (
	"strconv"
	"strings"
)

// Alarm is one event bit of a battery model: what the BMS itself says is
// wrong (over temperature, contactor error, ground fault, ...).
type Alarm struct {
	// Model is the model the bit is in: 802 (the battery as a whole), 803
	// (a string of the bank) or 804 (a string).
	Model uint16
	// String is the index of the string the bit is about (the position
	// in 803's string group, 804 Idx), as a decimal string; empty for 802
	// and for an 804 that does not implement Idx.
	String string
	// Point is the event field: "Evt1", "Evt2", "EvtVnd1", "EvtVnd2", or
	// in 803 "StrEvt1", "StrEvt2", "StrEvtVnd1", "StrEvtVnd2".
	Point string
	// Bit is the bit's position (0 = least significant) and Symbol its
	// name in the model ("OVER_TEMP_ALARM"); empty for the bits the model
	// leaves unnamed (Evt2 and the vendor fields).
	Bit    int
	Symbol string
	Active bool
}

// Name is the alarm's name for metric labels and logs: the model, the
// field and the bit's symbol ("802.Evt1.OVER_TEMP_ALARM"), or the bit's
// position for unnamed bits ("804.EvtVnd1.bit3").
func (a Alarm) Name() string {
	sym := a.Symbol
	if sym == "" {
		sym = "bit" + strconv.Itoa(a.Bit)
	}
	return strconv.Itoa(int(a.Model)) + "." + a.Point + "." + sym
}

// eventPoints are the event fields of the battery models, by model.
var eventPoints = map[uint16][]string{
	ModelBattery:          {"Evt1", "Evt2", "EvtVnd1", "EvtVnd2"},
	ModelLithiumIonBank:   {"StrEvt1", "StrEvt2", "StrEvtVnd1", "StrEvtVnd2"},
	ModelLithiumIonString: {"Evt1", "Evt2", "EvtVnd1", "EvtVnd2"},
}

// bankStringGroup is the name of model 803's repeating string group.
const bankStringGroup = "string"

// Alarms returns the event bits of decoded models 802, 803 (each string of
// the bank) and 804: every bit the model names (except its RESERVED_
// bits), set or not, and the set bits of the fields whose bits it leaves
// unnamed (Evt2 and the vendor fields). A field the device does not
// implement gives nothing. The first of two alarms with the same string
// and name wins (two 804s without Idx). Alarms does not keep or modify
// models.
func Alarms(models []Model) []Alarm {
	var out []Alarm
	seen := map[[2]string]bool{}
	add := func(id uint16, str string, g *Group) {
		def, err := lookup(id)
		if err != nil {
			return
		}
		for _, name := range eventPoints[id] {
			v, ok := g.Points[name]
			if !ok || !v.Present {
				continue
			}
			p := def.group.point(name)
			if p == nil {
				continue
			}
			emit := func(a Alarm) {
				k := [2]string{a.String, a.Name()}
				if !seen[k] {
					seen[k] = true
					out = append(out, a)
				}
			}
			if len(p.symbols) == 0 {
				for bit := range 32 {
					if v.Raw>>bit&1 != 0 {
						emit(Alarm{Model: id, String: str, Point: name, Bit: bit, Active: true})
					}
				}
				continue
			}
			for _, s := range p.symbols {
				if strings.HasPrefix(s.name, "RESERVED") || s.value < 0 || s.value > 63 {
					continue
				}
				emit(Alarm{Model: id, String: str, Point: name, Bit: s.value, Symbol: s.name, Active: v.Raw>>s.value&1 != 0})
			}
		}
	}
	for i := range models {
		m := &models[i]
		switch m.ID {
		case ModelBattery:
			add(m.ID, "", &m.Group)
		case ModelLithiumIonString:
			add(m.ID, index(m.Points["Idx"]), &m.Group)
		case ModelLithiumIonBank:
			strs := m.Groups[bankStringGroup]
			for n := range strs {
				add(m.ID, strconv.Itoa(n+1), &strs[n])
			}
		}
	}
	return out
}

// point finds a point by name in g or the groups below it.
func (g *groupDef) point(name string) *pointDef {
	for i := range g.points {
		if g.points[i].name == name {
			return &g.points[i]
		}
	}
	for i := range g.groups {
		if p := g.groups[i].point(name); p != nil {
			return p
		}
	}
	return nil
}
