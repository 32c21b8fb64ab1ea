package csvfile

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// benchInput is a fleet of 1024 cells polled every 10 s.
func benchInput(polls int) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for p := 0; p < polls; p++ {
		ts := t0.Add(time.Duration(p) * 10 * time.Second).Format(time.RFC3339)
		for m := 1; m <= 64; m++ {
			for c := 1; c <= 16; c++ {
				fmt.Fprintf(&b, "%s,ups-a,%d,%d,%d,cell_voltage_volts,3.%03d\n", ts, 1+m/16, m, c, 300+c)
				fmt.Fprintf(&b, "%s,ups-a,%d,%d,%d,cell_temperature_celsius,2%d.%d\n", ts, 1+m/16, m, c, c%10, m%10)
			}
		}
	}
	return b.Bytes()
}

func BenchmarkReader(b *testing.B) {
	in := benchInput(20)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	rows := 0
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(in), "bench.csv", telemetry.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			rows++
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
