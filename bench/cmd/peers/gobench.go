package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// goBench runs one of the repository's Go benchmarks and returns the
// metrics of its result line by unit ("samples/s", "allocs/op", ...).
func (h *harness) goBench(pkg, name string, args ...string) (map[string]float64, error) {
	cmdArgs := append([]string{"test", "-run", "^$", "-bench", "^" + name + "$"}, args...)
	cmd := exec.Command("go", append(cmdArgs, pkg)...)
	cmd.Dir = h.repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(cmdArgs, " "), err, out)
	}
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
		return m, nil
	}
	return nil, fmt.Errorf("no result line for %s in:\n%s", name, out)
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
	if r.Engine, err = h.goBench("./detector", "BenchmarkEngine", "-benchmem", "-cpu", "1", "-benchtime", bt); err != nil {
		return r, err
	}
	if r.Memory, err = h.goBench("./detector", "BenchmarkMemoryPerCell", "-benchtime", "1x"); err != nil {
		return r, err
	}
	if r.Replay, err = h.goBench("./cmd/cellwarden", "BenchmarkReplay5M", "-cpu", "1", "-benchtime", "1x"); err != nil {
		return r, err
	}
	n := "1000x"
	if h.quick {
		n = "100x"
	}
	r.Webhook, err = h.goBench("./alerting/notify", "BenchmarkSampleToWebhook", "-benchtime", n)
	return r, err
}
