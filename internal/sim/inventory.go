package sim

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// EOLHorizon is how far ahead a life date makes a battery "soon".
const EOLHorizon = 180 * 24 * time.Hour

// SOHLimit is the state of health below which a battery is at end of life.
const SOHLimit = 0.80

// fleetInventory is what the facilities team keeps: one UPS-wide entry per
// UPS.
func fleetInventory(sc *Scenario) *inventory.Inventory {
	inv := &inventory.Inventory{Source: "inventory.yaml"}
	for i, u := range sc.Fleet {
		inv.Batteries = append(inv.Batteries, inventory.Battery{
			UPS: u.Name, Vendor: u.Vendor, Model: u.Model,
			Serial:    fmt.Sprintf("SIM-%s-%04d", u.Name, i+1),
			Chemistry: u.Chemistry, Manufactured: dateOf(u.Manufactured), Installed: dateOf(u.Installed),
			DesignLifeYears: u.DesignLifeYears, WarrantyUntil: dateOf(u.WarrantyUntil), ReplaceBy: dateOf(u.ReplaceBy),
		})
	}
	return inv
}

// dateOf is the inventory date of t; a zero time (not set) is unknown.
func dateOf(t time.Time) inventory.Date {
	if t.IsZero() {
		return inventory.Date{}
	}
	return inventory.DateOf(t)
}

// WriteInventory writes inv in the YAML of interfaces.md §2.
func WriteInventory(w io.Writer, inv *inventory.Inventory) error {
	var b []byte
	b = append(b, "# Battery inventory written by cellwarden sim.\nbatteries:\n"...)
	for _, x := range inv.Batteries {
		b = append(b, "  - ups: "...)
		b = append(b, x.UPS...)
		b = append(b, '\n')
		if x.String != "" {
			b = append(b, "    string: "...)
			b = strconv.AppendQuote(b, x.String)
			b = append(b, '\n')
		}
		for _, kv := range [][2]string{{"vendor", x.Vendor}, {"model", x.Model}, {"serial", x.Serial}, {"chemistry", x.Chemistry.String()},
			{"manufactured", x.Manufactured.String()}, {"installed", x.Installed.String()}} {
			if kv[1] != "" {
				b = append(b, "    "+kv[0]+": "+kv[1]+"\n"...)
			}
		}
		if x.DesignLifeYears > 0 {
			b = append(b, "    design_life_years: "...)
			b = strconv.AppendFloat(b, x.DesignLifeYears, 'g', -1, 64)
			b = append(b, '\n')
		}
		for _, kv := range [][2]string{{"warranty_until", x.WarrantyUntil.String()}, {"replace_by", x.ReplaceBy.String()}} {
			if kv[1] != "" {
				b = append(b, "    "+kv[0]+": "+kv[1]+"\n"...)
			}
		}
	}
	_, err := w.Write(b)
	return err
}

// batteryLabels gives every string its age verdict as of the scenario's
// end.
func batteryLabels(sc *Scenario) []BatteryLabel {
	asOf := sc.Start.Add(sc.Duration)
	var out []BatteryLabel
	for _, u := range sc.Fleet {
		type lifeDate struct {
			reason string
			at     time.Time
		}
		var dates []lifeDate
		if !u.Installed.IsZero() && u.DesignLifeYears > 0 {
			dates = append(dates, lifeDate{"design_life", u.Installed.AddDate(0, 0, int(u.DesignLifeYears*365.25))})
		}
		if !u.WarrantyUntil.IsZero() {
			dates = append(dates, lifeDate{"warranty", u.WarrantyUntil})
		}
		if !u.ReplaceBy.IsZero() {
			dates = append(dates, lifeDate{"replace_by", u.ReplaceBy})
		}
		for s := 1; s <= u.Strings; s++ {
			sid := strconv.Itoa(s)
			l := BatteryLabel{UPS: u.Name, String: sid, State: StateOK}
			var past, soon []string
			for _, d := range dates {
				switch {
				case !d.at.After(asOf):
					past = append(past, d.reason)
				case d.at.Before(asOf.Add(EOLHorizon)):
					soon = append(soon, d.reason)
				}
			}
			if soh(&u, sid, int64(sc.Duration.Seconds()), sc) < SOHLimit {
				past = append(past, "soh")
			}
			switch {
			case len(past) > 0:
				l.State, l.Reasons = StateEndOfLife, past
			case len(soon) > 0:
				l.State, l.Reasons = StateSoon, soon
			}
			out = append(out, l)
		}
	}
	return out
}
