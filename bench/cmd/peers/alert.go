package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// sink receives the webhooks of cellwarden and of both Alertmanagers (the
// payloads share Alertmanager's webhook format) and keeps the first
// arrival of a firing CellOverTemperature per path and UPS.
type sink struct {
	mu      sync.Mutex
	arrived map[string]time.Time // path + " " + ups
	notify  chan struct{}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, a := range msg.Alerts {
		if a.Status != "firing" || a.Labels["alertname"] != "CellOverTemperature" {
			continue
		}
		k := r.URL.Path + " " + a.Labels["ups"]
		if _, ok := s.arrived[k]; !ok {
			s.arrived[k] = now
		}
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *sink) at(path, ups string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[path+" "+ups]
	return t, ok
}

// waitArrival waits for a path's webhook for a UPS.
func (s *sink) waitArrival(path, ups string, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		if t, ok := s.at(path, ups); ok {
			return t, true
		}
		select {
		case <-s.notify:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// alertResult holds the latencies of the alert path.
type alertResult struct {
	// Pipeline: the sample that completes the condition → cellwarden's
	// webhook request, through mosquitto and the whole daemon.
	Pipeline []time.Duration
	// Onset: the first hot sample of a cell (1 Hz afterwards) → the
	// webhook, for cellwarden (default for: 20s) and both Prometheus +
	// Alertmanager configurations. Missing arrivals are left out and
	// counted in Missed.
	Onset  map[string][]time.Duration
	Missed map[string]int
	Trials int
}

// Prometheus + Alertmanager configurations side by side.
var promConfigs = []struct {
	name                      string
	scrape, eval, hold, gwait string
}{
	{"defaults", "15s", "15s", "1m", "30s"},
	{"fastest", "1s", "1s", "0s", "0s"},
}

// alerting measures the alert path. One cellwarden daemon subscribes to
// mosquitto and sends its webhook to the sink; two Prometheus servers
// scrape the same daemon's /metrics with a rule on the same reading
// (cellwarden_cell_temperature_celsius > 60, as cellwarden's critical
// CellOverTemperature) and each has its own Alertmanager posting to the
// sink. A fault is a cell of a fresh UPS that reports 61 °C.
func (h *harness) alerting() (alertResult, error) {
	res := alertResult{Onset: map[string][]time.Duration{}, Missed: map[string]int{}}
	sk := &sink{arrived: map[string]time.Time{}, notify: make(chan struct{}, 1)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: sk}
	go srv.Serve(l)
	defer srv.Close()
	hook := "http://" + l.Addr().String()

	broker, brokerURL, err := h.startMosquitto("mosquitto-alerting")
	if err != nil {
		return res, err
	}
	defer broker.stop()
	cfg := daemonMQTT("alerting", brokerURL, 1, 0, `        - topic: hot/{ups}/{string}/{module}
          time_field: time
          time_unit: ms
          fields:
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
`, fmt.Sprintf(`alerting:
  outbox: {path: outbox.db}
  receivers:
    - name: oncall
      match: {severity: [critical]}
      webhook: {url: %q, group_by: [ups], group_wait: 0s}
`, hook+"/cellwarden"))
	daemon, daemonURL, err := h.startServe("serve-alerting", cfg, true)
	if err != nil {
		return res, err
	}
	defer daemon.stop()
	target := strings.TrimPrefix(daemonURL, "http://")

	for _, pc := range promConfigs {
		dir := filepath.Join(h.dir, "prom-"+pc.name)
		os.MkdirAll(dir, 0o755)
		amAddr, promAddr := freeAddr(), freeAddr()
		os.WriteFile(filepath.Join(dir, "am.yml"), fmt.Appendf(nil,
			"route: {receiver: hook, group_by: ['...'], group_wait: %s, group_interval: 1s}\nreceivers: [{name: hook, webhook_configs: [{url: %q}]}]\n",
			pc.gwait, hook+"/am-"+pc.name), 0o644)
		am, err := startProc(h.dir, "alertmanager-"+pc.name, nil, h.alertmanager, "--config.file="+filepath.Join(dir, "am.yml"),
			"--storage.path="+filepath.Join(dir, "am"), "--web.listen-address="+amAddr, "--cluster.listen-address=")
		if err != nil {
			return res, err
		}
		defer am.stop()
		os.WriteFile(filepath.Join(dir, "rules.yml"), fmt.Appendf(nil,
			"groups: [{name: cells, rules: [{alert: CellOverTemperature, expr: 'cellwarden_cell_temperature_celsius{ups=~\"onset-.*\"} > 60', for: %s}]}]\n", pc.hold), 0o644)
		os.WriteFile(filepath.Join(dir, "prometheus.yml"), fmt.Appendf(nil, `global: {scrape_interval: %s, evaluation_interval: %s}
rule_files: [%s]
alerting: {alertmanagers: [{static_configs: [{targets: [%q]}]}]}
scrape_configs: [{job_name: cellwarden, static_configs: [{targets: [%q]}]}]
`, pc.scrape, pc.eval, filepath.Join(dir, "rules.yml"), amAddr, target), 0o644)
		prom, err := startProc(h.dir, "prometheus-"+pc.name, nil, h.prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
		if err != nil {
			return res, err
		}
		defer prom.stop()
		if err := waitFor("prometheus "+pc.name, 30*time.Second, func() bool {
			_, _, e1 := get("http://" + promAddr + "/-/ready")
			_, _, e2 := get("http://" + amAddr + "/-/ready")
			return e1 == nil && e2 == nil
		}); err != nil {
			return res, fmt.Errorf("%w\n%s\n%s", err, prom.tail(), am.tail())
		}
	}

	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-faults").
		SetCleanSession(true).SetConnectTimeout(5 * time.Second))
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		return res, t.Error()
	}
	defer c.Disconnect(250)
	var pubMu sync.Mutex
	send := func(ups string, at time.Time) error {
		pubMu.Lock()
		defer pubMu.Unlock()
		t := c.Publish("hot/"+ups+"/1/1", 1, false, fmt.Sprintf(`{"time":%d,"cell_temperature_celsius":[61]}`, at.UnixMilli()))
		t.Wait()
		return t.Error()
	}

	// Onset trials: a cell turns hot every 5 s and stays hot, reported
	// once a second with the wall-clock time, as a BMS polled at 1 Hz.
	trials, spacing, wait := 6, 5*time.Second, 170*time.Second
	if h.quick {
		trials, wait = 2, 20*time.Second
	}
	res.Trials = trials
	onsets := make([]time.Time, trials)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start := time.Now()
		started := 0
		for {
			now := time.Now()
			for started < trials && now.Sub(start) >= time.Duration(started)*spacing {
				onsets[started] = now
				started++
			}
			for i := range started {
				send(fmt.Sprintf("onset-%d", i), now)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// Pipeline trials, meanwhile: a fresh UPS's cell is reported hot 20 s
	// ago (pending) and hot now, which completes cellwarden's default
	// for: 20s; the clock runs from the first of the two publishes.
	n := 300
	if h.quick {
		n = 30
	}
	time.Sleep(2 * time.Second)
	for i := range n {
		ups := fmt.Sprintf("pipe-%d", i)
		start := time.Now()
		if err := send(ups, start.Add(-20*time.Second)); err != nil {
			return res, err
		}
		if err := send(ups, start); err != nil {
			return res, err
		}
		if at, ok := sk.waitArrival("/cellwarden", ups, 5*time.Second); ok {
			res.Pipeline = append(res.Pipeline, at.Sub(start))
		} else {
			res.Missed["pipeline"]++
		}
	}

	paths := []string{"/cellwarden"}
	for _, pc := range promConfigs {
		paths = append(paths, "/am-"+pc.name)
	}
	all := func() bool {
		for _, p := range paths {
			for i := range trials {
				if _, ok := sk.at(p, fmt.Sprintf("onset-%d", i)); !ok {
					return false
				}
			}
		}
		return true
	}
	waitFor("every onset webhook", wait, all)
	close(stop)
	wg.Wait()
	for _, p := range paths {
		name := strings.TrimPrefix(p, "/")
		for i := range trials {
			if at, ok := sk.at(p, fmt.Sprintf("onset-%d", i)); ok {
				res.Onset[name] = append(res.Onset[name], at.Sub(onsets[i]))
			} else {
				res.Missed[name]++
			}
		}
		slices.Sort(res.Onset[name])
	}
	slices.Sort(res.Pipeline)
	return res, nil
}

// quantile of sorted durations (nearest rank).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}
