package main

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// goBench runs one of the repository's Go benchmarks and returns the
// metrics of its first result line by unit ("samples/s", "allocs/op", ...).
func (h *harness) goBench(pkg, name string, args ...string) (map[string]float64, error) {
	runs, err := h.goBenchRuns(pkg, name, args...)
	if err != nil {
		return nil, err
	}
	return runs[0], nil
}

// goBenchMedian runs a benchmark count times (-count) and returns the run
// whose key is the median: one run can land in a slow spell of a shared
// machine, or a fast one.
func (h *harness) goBenchMedian(pkg, name, key string, count int, args ...string) (map[string]float64, error) {
	runs, err := h.goBenchRuns(pkg, name, append(args, "-count", strconv.Itoa(count))...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(runs, func(a, b map[string]float64) int { return cmp.Compare(a[key], b[key]) })
	return runs[len(runs)/2], nil
}

// goBenchRuns runs a benchmark and returns the metrics of each result line.
func (h *harness) goBenchRuns(pkg, name string, args ...string) ([]map[string]float64, error) {
	cmdArgs := append([]string{"test", "-run", "^$", "-bench", "^" + name + "$"}, args...)
	cmd := exec.Command("go", append(cmdArgs, pkg)...)
	cmd.Dir = h.repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(cmdArgs, " "), err, out)
	}
	var runs []map[string]float64
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], name) {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		runs = append(runs, m)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("no result line for %s in:\n%s", name, out)
	}
	return runs, nil
}

// microResult holds the figures of the Go benchmarks the harness runs.
type microResult struct {
	Engine, Memory, Replay, Webhook map[string]float64
}

func (h *harness) micro() (microResult, error) {
	var r microResult
	var err error
	bt := "2s"
	if h.quick {
		bt = "200ms"
	}
	if r.Engine, err = h.goBenchMedian("./detector", "BenchmarkEngine", "samples/cpu-s", 5, "-benchmem", "-cpu", "1", "-benchtime", bt); err != nil {
		return r, err
	}
	if r.Memory, err = h.goBench("./detector", "BenchmarkMemoryPerCell", "-benchtime", "1x"); err != nil {
		return r, err
	}
	if r.Replay, err = h.goBenchMedian("./cmd/cellwarden", "BenchmarkReplay5M", "rows/cpu-s", 3, "-cpu", "1", "-benchtime", "1x"); err != nil {
		return r, err
	}
	n := "1000x"
	if h.quick {
		n = "100x"
	}
	r.Webhook, err = h.goBench("./alerting/notify", "BenchmarkSampleToWebhook", "-benchtime", n)
	return r, err
}
