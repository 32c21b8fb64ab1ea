// Command peers measures cellwarden beside the tools users would pick
// instead, in one run on one machine: Prometheus + Alertmanager for the
// alert path, mqtt2prometheus for MQTT ingest, a bare goburrow client for
// Modbus, and the whole daemon from 1 k to 100 k cells. bench/peers.sh
// (make bench-peers) installs the peers from Debian, builds cellwarden and
// runs it; docs/benchmarks.md explains the method and holds the results.
//
//	peers --cellwarden BIN --out DIR [--quick] [--phases alert,mqtt,modbus,micro,scale] [--scale-cells 1000,100000]
//	peers publish --broker URL --layout one|sixteen|fleet --rate R --duration D ...
//
// It prints the comparison table and writes DIR/results.md and
// DIR/benchmarks-scale.svg. Every process it starts it stops by PID.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type harness struct {
	repo, dir, self                                            string
	cellwarden, mosquitto, prometheus, alertmanager, mqtt2prom string
	quick                                                      bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "publish" {
		if err := runPublisher(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run() error {
	h := &harness{}
	out := flag.String("out", "bench/out", "directory for results.md and the plot")
	phases := flag.String("phases", "micro,modbus,mqtt,scale,alert", "phases to run")
	flag.StringVar(&h.cellwarden, "cellwarden", "", "the cellwarden binary")
	flag.StringVar(&h.repo, "repo", ".", "the repository (for the Go benchmarks)")
	flag.BoolVar(&h.quick, "quick", false, "short runs (to check the harness, not to measure)")
	scaleCells := flag.String("scale-cells", "1000,10000,30000,100000", "fleet sizes of the scale phase (--quick: 1000,10000)")
	flag.Parse()
	var err error
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	for _, t := range []struct {
		p     *string
		names []string
	}{
		{&h.mosquitto, []string{"mosquitto", "/usr/sbin/mosquitto"}},
		{&h.prometheus, []string{"prometheus"}},
		{&h.alertmanager, []string{"prometheus-alertmanager"}},
		{&h.mqtt2prom, []string{"prometheus-mqtt-exporter"}},
	} {
		for _, n := range t.names {
			if p, err := exec.LookPath(n); err == nil {
				*t.p = p
				break
			}
		}
		if *t.p == "" {
			return fmt.Errorf("%s is not installed (bench/peers.sh installs it)", t.names[0])
		}
	}
	if h.cellwarden == "" {
		return fmt.Errorf("--cellwarden is required")
	}
	if h.dir, err = os.MkdirTemp("", "cellwarden-peers"); err != nil {
		return err
	}
	defer os.RemoveAll(h.dir)
	os.MkdirAll(*out, 0o755)

	r := &report{Started: time.Now(), LoadStart: loadavg(), Quick: h.quick}
	want := strings.Split(*phases, ",")
	step := func(name string, f func() error) error {
		if !slices.Contains(want, name) {
			return nil
		}
		t := time.Now()
		fmt.Fprintf(os.Stderr, "== %s (load %s)\n", name, loadavg())
		err := f()
		fmt.Fprintf(os.Stderr, "   %s took %v\n", name, time.Since(t).Round(time.Second))
		return err
	}
	if err := step("micro", func() (err error) { r.Micro, err = h.micro(); return }); err != nil {
		return err
	}
	if err := step("modbus", func() (err error) { r.Modbus, err = h.modbusRuns(); return }); err != nil {
		return err
	}
	if err := step("mqtt", func() error {
		for _, layout := range []string{layoutOne, layoutSixteen} {
			for _, sub := range []string{"cellwarden", "mqtt2prometheus"} {
				row, err := h.ingest(layout, sub)
				if err != nil {
					return fmt.Errorf("ingest %s %s: %w", layout, sub, err)
				}
				r.Ingest = append(r.Ingest, row)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := step("scale", func() error {
		var sizes []int
		for _, f := range strings.Split(*scaleCells, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 16 {
				return fmt.Errorf("--scale-cells: %q is not a fleet size of at least 16 cells", f)
			}
			sizes = append(sizes, n)
		}
		if h.quick {
			sizes = []int{1000, 10000}
		}
		for _, n := range sizes {
			row, err := h.scale(n)
			if err != nil {
				return fmt.Errorf("scale %d: %w", n, err)
			}
			r.Scale = append(r.Scale, row)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := step("alert", func() (err error) { a, err := h.alerting(); r.Alert = &a; return err }); err != nil {
		return err
	}
	r.Finished, r.LoadEnd = time.Now(), loadavg()
	r.Machine, r.Versions = machine(), versions(h)

	md := r.markdown()
	fmt.Println(r.text())
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if len(r.Scale) > 0 {
		if err := os.WriteFile(filepath.Join(*out, "benchmarks-scale.svg"), scalePlot(r.Scale), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machine describes the host: CPUs, CPU model and memory.
func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%f", &kb)
		mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	n, _ := exec.Command("nproc").Output()
	k, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%s CPUs (nproc), %s, %s RAM, Linux %s", strings.TrimSpace(string(n)), cpu, mem, strings.TrimSpace(string(k)))
}

func versions(h *harness) [][2]string {
	var v [][2]string
	add := func(name string, cmd ...string) {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.Dir = h.repo
		b, _ := c.Output()
		v = append(v, [2]string{name, strings.TrimSpace(string(bytes.SplitN(b, []byte("\n"), 2)[0]))})
	}
	add("cellwarden", "git", "describe", "--always", "--dirty")
	add("Go", "go", "version")
	for _, p := range []string{"mosquitto", "prometheus", "prometheus-alertmanager", "prometheus-mqtt-exporter"} {
		add(p+" (Debian)", "dpkg-query", "-W", "-f", "${Version}", p)
	}
	return v
}
