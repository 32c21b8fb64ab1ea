// Package lifecycle makes battery age a first-class signal: it works out,
// for every battery string, when it reaches end of life and why, from
// every source of dates cellwarden has, and says where each date came
// from.
//
// Sources, each date carrying its provenance:
//   - the inventory of interfaces.md §2 ("inventory.yaml:12", the line
//     of the entry);
//   - an asset list in CSV (ParseAssets; "assets.csv:4");
//   - dates read from devices, such as SunSpec 802 WarrDt, fed as
//     DateObservation ("modbus rack-1 SunSpec 802 WarrDt");
//   - state-of-health readings (string_soh_ratio), whose Theil–Sen
//     trend is projected to the day it reaches the limit.
//
// Policy (Config, the `lifecycle:` configuration section): design life by
// chemistry, vendor or model, warranty and vendor replace-by; a horizon
// (180 days) within which a life date makes a battery "soon"; a
// state-of-health limit (0.80). States go ok → soon → end_of_life; a
// battery with no life date at all is "unknown". Placeholder dates
// (1970-01-01, 2001-09-25, ...), dates in the future, dates in an
// impossible order, sources that disagree and unknown ages are data
// problems reported with the finding.
//
// The Evaluator is pure and event-time: it never reads the wall clock;
// the daemon's detector goroutine owns it and calls Evaluate with the
// event time. Store keeps acknowledgements (owner, planned date, expiry)
// in a JSON file shared by the daemon and the command line. Render writes
// the fleet audit as a table, CSV, JSON, Markdown or one self-contained
// HTML file with an SVG timeline. docs/lifecycle.md is the user guide.
package lifecycle
