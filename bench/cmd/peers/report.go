package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// modbusExporterCPU is RichiH/modbus_exporter's CPU per 100-register
// target poll as quoted in issue 10 (measured earlier on this machine):
// the exporter is neither packaged by Debian nor served by the Go module
// proxy here, so the harness cannot run it.
const modbusExporterCPU = 4700 * time.Microsecond

type report struct {
	Started, Finished time.Time
	LoadStart         string
	LoadEnd           string
	Quick             bool
	Machine           string
	Versions          [][2]string
	Micro             microResult
	Modbus            []modbusRow
	Ingest            []ingestRow
	Scale             []scaleRow
	Alert             *alertResult
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *report) text() string { return r.markdown() }

// markdown renders the results: run conditions, the target table, then a
// table per comparison.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("Run of %s, %s (wall %v)", r.Started.UTC().Format("2006-01-02 15:04 MST"), "`make bench-peers`", r.Finished.Sub(r.Started).Round(time.Second))
	if r.Quick {
		w(", **--quick: too short to be a measurement**")
	}
	w(".\n\n- Machine: %s\n- Load average (1, 5, 15 min) at the start: %s; at the end: %s\n", r.Machine, r.LoadStart, r.LoadEnd)
	w("- Versions:")
	for i, v := range r.Versions {
		if i > 0 {
			w(";")
		}
		w(" %s %s", v[0], v[1])
	}
	w("\n\n")

	var targets [][3]string
	add := func(target, measured string, ok bool) {
		targets = append(targets, [3]string{target, measured, verdict(ok)})
	}

	if a := r.Alert; a != nil {
		p99 := quantile(a.Pipeline, 0.99)
		add("fault sample → webhook p99 ≤ 50 ms", fmt.Sprintf("p99 %s (p50 %s, %d faults, %d missed), through mosquitto and `cellwarden serve`",
			ms(p99), ms(quantile(a.Pipeline, 0.5)), len(a.Pipeline), a.Missed["pipeline"]), len(a.Pipeline) > 0 && p99 <= 50*time.Millisecond && a.Missed["pipeline"] == 0)
	}
	if w := r.Micro.Webhook; w != nil {
		add("(component) detector → webhook in process, p99", fmt.Sprintf("p99 %.1f ms (p50 %.1f ms), BenchmarkSampleToWebhook", w["p99-ms"], w["p50-ms"]), w["p99-ms"] <= 50)
	}
	byKey := map[string]ingestRow{}
	for _, row := range r.Ingest {
		byKey[row.Layout+"/"+row.Subscriber] = row
	}
	for _, layout := range []string{layoutOne, layoutSixteen} {
		cw, ok1 := byKey[layout+"/cellwarden"]
		mp, ok2 := byKey[layout+"/mqtt2prometheus"]
		if !ok1 || !ok2 {
			continue
		}
		ratio := cw.samplesPerCore() / mp.samplesPerCore()
		add(fmt.Sprintf("MQTT samples per CPU-second ≥ 3× mqtt2prometheus (%d reading(s) a message)", cw.ReadingsPerMessage),
			fmt.Sprintf("%.2f× (%s vs %s samples/s per core)", ratio, si(cw.samplesPerCore()), si(mp.samplesPerCore())), ratio >= 3)
		lost := cw.Published - cw.Received
		add(fmt.Sprintf("no message lost uncounted (%d a message)", cw.ReadingsPerMessage),
			fmt.Sprintf("cellwarden: %d published, %d received, %d dropped and counted", cw.Published, cw.Received, cw.Dropped), lost <= cw.Dropped)
		add(fmt.Sprintf("memory per cell ≤ mqtt2prometheus's per series (%d a message)", cw.ReadingsPerMessage),
			fmt.Sprintf("%.0f B vs %.0f B", cw.bytesPerSeries(), mp.bytesPerSeries()), cw.bytesPerSeries() <= mp.bytesPerSeries())
	}
	for _, conns := range []int{1, 4} {
		var cw, gbr *modbusRow
		for i := range r.Modbus {
			if r.Modbus[i].Conns != conns {
				continue
			}
			if r.Modbus[i].Client == "cellwarden" {
				cw = &r.Modbus[i]
			} else {
				gbr = &r.Modbus[i]
			}
		}
		if cw == nil || gbr == nil {
			continue
		}
		ratio := cw.regsPerSecond() / gbr.regsPerSecond()
		add(fmt.Sprintf("Modbus registers/s ≥ 80 %% of bare goburrow (%d connection(s))", conns),
			fmt.Sprintf("%.0f %% (%s vs %s registers/s)", 100*ratio, si(cw.regsPerSecond()), si(gbr.regsPerSecond())), ratio >= 0.8)
		if conns == 1 {
			x := float64(modbusExporterCPU) / float64(cw.cpuPer100())
			add("Modbus CPU per 100-register poll ≥ 10× below modbus_exporter's 4.7 ms (quoted, not measured here)",
				fmt.Sprintf("%.0f µs: %.0f× below", float64(cw.cpuPer100().Nanoseconds())/1000, x), x >= 10)
		}
	}
	if m := r.Micro.Replay; m != nil {
		add("replay ≥ 1.5 M rows/s/core", fmt.Sprintf("%s rows per CPU-second (GOMAXPROCS=1; %s rows/s of wall time)", si(m["rows/cpu-s"]), si(m["rows/s"])),
			m["rows/cpu-s"] >= 1.5e6)
	}
	if m := r.Micro.Engine; m != nil {
		add("detector ≥ 5 M samples/s/core, 0 allocs", fmt.Sprintf("%s samples per CPU-second (GOMAXPROCS=1; %s samples/s of wall time), %.0f allocs per poll",
			si(m["samples/cpu-s"]), si(m["samples/s"]), m["allocs/op"]),
			m["samples/cpu-s"] >= 5e6 && m["allocs/op"] == 0)
	}
	if n := len(r.Scale); n > 0 {
		top := r.Scale[n-1]
		add(fmt.Sprintf("%s cells at 1 Hz (V and T) under 1 core", si(float64(top.Cells))),
			fmt.Sprintf("%.2f cores at %s samples/s (%.2f %% of the samples arrived)", top.CPUCores, si(top.SamplesPerSecond), 100*top.Received/top.Expected),
			top.CPUCores < 1 && top.Received >= 0.99*top.Expected)
		add(fmt.Sprintf("≤ 2 KiB per cell at %s cells", si(float64(top.Cells))),
			fmt.Sprintf("%.0f B RSS per cell (%.0f MiB)", top.RSS/float64(top.Cells), top.RSS/(1<<20)), top.RSS/float64(top.Cells) <= 2048)
		add(fmt.Sprintf("/metrics scrape of all series < 0.5 s at %s cells", si(float64(top.Cells))),
			fmt.Sprintf("%.2f s to the last byte of the gzipped response, slowest of 3 (%s series, %.0f MiB of text; the harness's gunzip another %.2f s; the first scrape after the start %.2f s)",
				top.ScrapeSeconds, si(float64(top.ScrapeSeries)), float64(top.ScrapeBytes)/(1<<20), top.GunzipSeconds, top.FirstScrapeSeconds), top.ScrapeSeconds < 0.5)
	}
	w("### Targets\n\n| target | measured | |\n|---|---|---|\n")
	for _, t := range targets {
		w("| %s | %s | %s |\n", t[0], t[1], t[2])
	}

	if a := r.Alert; a != nil {
		w("\n### Alert path: a cell at 61 °C → webhook request\n\n")
		w("| pipeline | settings | latency measured from | n | p50 | p99 / max |\n|---|---|---|---|---|---|\n")
		w("| cellwarden (MQTT → detector → outbox → webhook) | defaults (`for: 20s` in event time) | the sample that completes the condition | %d | %s | %s / %s |\n",
			len(a.Pipeline), ms(quantile(a.Pipeline, 0.5)), ms(quantile(a.Pipeline, 0.99)), ms(quantile(a.Pipeline, 1)))
		onset := func(name, label, settings string) {
			d := a.Onset[name]
			w("| %s | %s | the first hot sample (reported every 1 s) | %d of %d | %s | %s |\n", label, settings, len(d), a.Trials,
				sec(quantile(d, 0.5)), sec(quantile(d, 1)))
		}
		onset("cellwarden", "cellwarden", "defaults (`for: 20s`, group_wait 0)")
		onset("am-defaults", "Prometheus + Alertmanager", "defaults: scrape 15 s, evaluation 15 s, `for: 1m`, group_wait 30 s")
		onset("am-fastest", "Prometheus + Alertmanager", "fastest sane: scrape 1 s, evaluation 1 s, `for: 0s`, group_wait 0")
	}

	if len(r.Ingest) > 0 {
		w("\n### MQTT ingest through mosquitto (QoS 1, 20 000 distinct cells, equal payloads)\n\n")
		w("| payload | subscriber | published | received | lost | counted as dropped | wall | CPU | samples/s per core | RSS growth per cell / series | harness's /metrics polls (CPU left out) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, row := range r.Ingest {
			w("| %d reading(s) a message | %s | %d | %d | %d | %d | %.1f s | %.2f s | %s | %.0f B | %d (%.2f s) |\n", row.ReadingsPerMessage, row.Subscriber,
				row.Published, row.Received, row.Published-row.Received, row.Dropped, row.WallSeconds, row.CPUSeconds, si(row.samplesPerCore()), row.bytesPerSeries(),
				row.Polls, row.PollCPUSeconds)
		}
		w("\nCPU is the subscriber's from the first publish until every message arrived, less what it spent answering the harness's own\n" +
			"/metrics polls (which only tell the harness how many messages arrived); the resident memory is read before the first poll.\n")
	}

	if len(r.Modbus) > 0 {
		rp := r.Modbus[0]
		w("\n### Modbus TCP against `cellwarden sim serve` (%s, %d registers in %d blocks a target poll)\n\n", modbusProfile, rp.RegsPerPoll, rp.BlocksPerPol)
		w("| client | connections | target polls/s | registers/s | errors | client CPU per 100 registers | simulator CPU |\n|---|---|---|---|---|---|---|\n")
		for _, row := range r.Modbus {
			w("| %s | %d | %s | %s | %d | %.0f µs | %.0f %% of a core |\n", row.Client, row.Conns, si(float64(row.Polls)/row.Seconds), si(row.regsPerSecond()),
				row.Errors, float64(row.cpuPer100().Nanoseconds())/1000, 100*row.SimCPU/row.Seconds)
		}
		w("| RichiH/modbus_exporter (quoted, **not measured in this run**) | new connection per poll | 140–260 | | | 4700 µs | |\n")
	}

	if m := r.Micro; m.Engine != nil {
		w("\n### Go benchmarks of the repository\n\n| benchmark | figure |\n|---|---|\n")
		w("| `BenchmarkEngine -cpu 1` (detector) | %s samples per CPU-second (%s samples/s of wall time), %.0f allocs and %.0f B per poll of 2112 samples |\n",
			si(m.Engine["samples/cpu-s"]), si(m.Engine["samples/s"]), m.Engine["allocs/op"], m.Engine["B/op"])
		w("| `BenchmarkMemoryPerCell` (detector state and registry) | %.0f B per cell |\n", m.Memory["B/cell"])
		w("| `BenchmarkReplay5M -cpu 1` (`cellwarden replay`) | %s rows per CPU-second (%s rows/s of wall time) |\n", si(m.Replay["rows/cpu-s"]), si(m.Replay["rows/s"]))
		w("| `BenchmarkSampleToWebhook` (in process) | p50 %.2f ms, p99 %.2f ms |\n", m.Webhook["p50-ms"], m.Webhook["p99-ms"])
	}

	if len(r.Scale) > 0 {
		w("\n### The whole daemon from 1 k to 100 k cells (voltage and temperature at 1 Hz, MQTT QoS 0)\n\n")
		w("| cells | samples/s | samples arrived (of all published) | daemon CPU (cores) | samples per CPU-second | mosquitto CPU | RSS | RSS per cell | Go heap in use | /metrics series | text / gzipped | first scrape after the start | scrape response (max of the next 3) | scrape CPU | harness's gunzip |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.Scale {
			w("| %s | %s | %.1f %% | %.3f | %s | %.2f | %.0f MiB | %.0f B | %.0f MiB | %s | %.0f / %.1f MiB | %.2f s | %.2f s | %.2f s | %.2f s |\n", si(float64(s.Cells)), si(s.SamplesPerSecond),
				100*s.Received/s.Expected, s.CPUCores, si(s.SamplesPerCPUSecond), s.MosquittoCPUFraction, s.RSS/(1<<20), s.RSS/float64(s.Cells),
				s.HeapInuse/(1<<20), si(float64(s.ScrapeSeries)), float64(s.ScrapeBytes)/(1<<20), float64(s.ScrapeWireBytes)/(1<<20),
				s.FirstScrapeSeconds, s.ScrapeSeconds, s.ScrapeCPUSecondsTotal, s.GunzipSeconds)
		}
		w("\n![CPU and memory of the daemon against the number of cells](benchmarks-scale.svg)\n")
	}
	return b.String()
}

// scalePlot draws the daemon's CPU (cores) and RSS (MiB) against the
// number of cells on a logarithmic axis, as an SVG.
func scalePlot(rows []scaleRow) []byte {
	const W, H, L, R, T, B = 640, 300, 60, 60, 30, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	lo, hi := math.Log10(float64(rows[0].Cells)), math.Log10(float64(rows[len(rows)-1].Cells))
	if hi == lo {
		hi = lo + 1
	}
	x := func(c int) float64 { return L + (math.Log10(float64(c))-lo)/(hi-lo)*(W-L-R) }
	maxCPU, maxMiB := 0.0, 0.0
	for _, r := range rows {
		maxCPU, maxMiB = max(maxCPU, r.CPUCores), max(maxMiB, r.RSS/(1<<20))
	}
	maxCPU, maxMiB = niceCeil(maxCPU), niceCeil(maxMiB)
	y := func(v, top float64) float64 { return H - B - v/top*(H-T-B) }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", L, H-B, W-R, H-B)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#1f77b4"/>`+"\n", L, T, L, H-B)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d62728"/>`+"\n", W-R, T, W-R, H-B)
	for i := 0; i <= 4; i++ {
		v := float64(i) / 4
		yy := y(v, 1)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", L, yy, W-R, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#1f77b4">%.2g</text>`+"\n", L-5, yy+4, v*maxCPU)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#d62728">%.0f</text>`+"\n", W-R+5, yy+4, v*maxMiB)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(r.Cells), H-B+18, si(float64(r.Cells)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">cells (log scale), voltage and temperature at 1 Hz</text>`+"\n", (W)/2, H-10)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#1f77b4">CPU (cores)</text>`+"\n", 5, T-10)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#d62728">RSS (MiB)</text>`+"\n", W-5, T-10)
	line := func(color string, v func(scaleRow) float64, top float64) {
		var pts []string
		for _, r := range rows {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(r.Cells), y(v(r), top)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		for _, p := range pts {
			var px, py float64
			fmt.Sscanf(p, "%f,%f", &px, &py)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px, py, color)
		}
	}
	line("#1f77b4", func(r scaleRow) float64 { return r.CPUCores }, maxCPU)
	line("#d62728", func(r scaleRow) float64 { return r.RSS / (1 << 20) }, maxMiB)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
