package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type probeOptions struct {
	address  string
	unit     uint8
	input    bool
	start    uint16
	count    uint16
	metric   string
	timeout  time.Duration
	showBest int
}

// runModbusProbe reads a register range once (read function codes only)
// and shows it decoded every plausible way, best first.
func runModbusProbe(o probeOptions, stdout io.Writer) error {
	m, ok := telemetry.ParseMetric(o.metric)
	if !ok {
		return fmt.Errorf("--metric %q is not a metric of the catalogue", o.metric)
	}
	if o.count == 0 || o.count > modbus.MaxBlock {
		return fmt.Errorf("--count must be 1..%d", modbus.MaxBlock)
	}
	if int(o.start)+int(o.count) > 1<<16 {
		return fmt.Errorf("--start %d --count %d runs past register 65535", o.start, o.count)
	}
	link := modbus.NewTCPLink(o.address, o.timeout)
	defer link.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*o.timeout)
	defer cancel()
	regs, rerr := link.Read(ctx, o.unit, o.input, modbus.Block{Start: o.start, Count: o.count})
	if rerr != nil {
		return fmt.Errorf("reading %d registers from %d at %s unit %d: %w", o.count, o.start, o.address, o.unit, rerr)
	}
	fn := "holding (FC 3)"
	if o.input {
		fn = "input (FC 4)"
	}
	fmt.Fprintf(stdout, "%s unit %d, %s registers %d..%d (0x%04X..0x%04X):\n", o.address, o.unit, fn,
		o.start, o.start+o.count-1, o.start, o.start+o.count-1)
	var raw []string
	for _, r := range regs {
		raw = append(raw, fmt.Sprintf("%04X", r))
	}
	fmt.Fprintf(stdout, "  raw: %s\n\nRead as %s, most plausible first:\n", strings.Join(raw, " "), m)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAUSIBLE\tDECODING (point settings)\tVALUES")
	for i, c := range modbus.Interpret(regs, m) {
		if i == o.showBest {
			break
		}
		vals := c.Values
		more := ""
		if len(vals) > 8 {
			vals, more = vals[:8], " ..."
		}
		var vs []string
		for _, v := range vals {
			vs = append(vs, fmt.Sprintf("%.4g", v))
		}
		fmt.Fprintf(tw, "%3.0f%%\t%s\t%s%s\n", c.Plausible*100, c.Describe(), strings.Join(vs, " "), more)
	}
	return tw.Flush()
}
