package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// startMosquitto runs Debian's mosquitto on a free loopback port. Its
// queues are large enough that it never drops for a slow subscriber during
// a run (the default of 1000 queued messages would, silently); a loss is
// then the subscriber's.
func (h *harness) startMosquitto(name string) (*proc, string, error) {
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(h.dir, name+".conf")
	os.WriteFile(conf, fmt.Appendf(nil, "listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nsys_interval 1\npersistence false\n", port), 0o644)
	p, err := startProc(h.dir, name, nil, h.mosquitto, "-c", conf)
	if err != nil {
		return nil, "", err
	}
	err = waitFor("mosquitto", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%w\n%s", err, p.tail())
	}
	return p, "tcp://" + addr, nil
}

// startServe runs `cellwarden serve` with a configuration and waits until
// it is ready and, when it has an MQTT collector, subscribed.
func (h *harness) startServe(name, config string, mqtt bool) (*proc, string, error) {
	dir := filepath.Join(h.dir, name)
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	cfg := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return nil, "", err
	}
	addr := freeAddr()
	p, err := startProc(h.dir, name, nil, h.cellwarden, "serve", "--config", cfg,
		"--state.dir", filepath.Join(dir, "state"), "--web.listen-address", addr, "--log.level", "warn")
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	err = waitFor(name+" to be ready", 30*time.Second, func() bool {
		if p.exited() {
			return true
		}
		body, _, err := get(url + "/metrics")
		return err == nil && (!mqtt || metricSum(body, "cellwarden_mqtt_connected") >= 1)
	})
	if err == nil && p.exited() {
		err = fmt.Errorf("%s exited", name)
	}
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%w\n%s", err, p.tail())
	}
	return p, url, nil
}

// publish runs n publisher processes sharing the entities and rate, and
// waits for them. It returns how many messages they published.
func (h *harness) publish(broker, layout string, qos int, rate float64, d time.Duration, entities, n int) (int, error) {
	type res struct {
		r   publishResult
		err error
	}
	out := make(chan res, n)
	for i := range n {
		cmd := exec.Command(h.self, "publish", "--broker", broker, "--layout", layout, fmt.Sprint("--qos=", qos),
			fmt.Sprint("--rate=", rate/float64(n)), fmt.Sprint("--duration=", d), fmt.Sprint("--entities=", entities),
			fmt.Sprint("--first=", i), fmt.Sprint("--step=", n))
		cmd.Stderr = os.Stderr
		go func() {
			b, err := cmd.Output()
			var r publishResult
			if err == nil {
				err = json.Unmarshal(b, &r)
			}
			out <- res{r, err}
		}()
	}
	total := 0
	var first error
	for range n {
		r := <-out
		total += r.r.Published
		if r.err != nil && first == nil {
			first = fmt.Errorf("publisher: %w", r.err)
		}
	}
	return total, first
}

// settle polls a counter until it stops moving (1 s without change) or
// reaches want, and returns its last value and when it last changed.
func settle(read func() float64, want float64) (float64, time.Time) {
	last, changed := read(), time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if last >= want {
			break
		}
		time.Sleep(250 * time.Millisecond)
		v := read()
		if v != last {
			last, changed = v, time.Now()
		} else if time.Since(changed) > time.Second {
			break
		}
	}
	return last, changed
}

// ingestRow is one subscriber's figures for one payload layout.
type ingestRow struct {
	Layout, Subscriber      string
	Published, Received     int
	Dropped                 int // losses the subscriber itself counted
	ReadingsPerMessage      int
	Series                  int
	CPUSeconds, WallSeconds float64
	RSSBefore, RSSAfter     float64
	// Polls of /metrics the harness made to see every message arrive,
	// and the subscriber's CPU answering them: left out of CPUSeconds.
	Polls          int
	PollCPUSeconds float64
}

func (r ingestRow) samplesPerCore() float64 {
	return float64(r.Received*r.ReadingsPerMessage) / r.CPUSeconds
}

func (r ingestRow) bytesPerSeries() float64 { return (r.RSSAfter - r.RSSBefore) / float64(r.Series) }

const ingestCells = 20000

// daemonMQTT renders a daemon configuration with one MQTT collector
// (clean session, the given QoS, queue_size when above 0) and its
// subscriptions, then extra.
func daemonMQTT(name, broker string, qos, queue int, subscriptions, extra string) string {
	q := ""
	if queue > 0 {
		q = fmt.Sprintf("      queue_size: %d\n", queue)
	}
	return fmt.Sprintf("collectors:\n  mqtt:\n    - name: %s\n      broker: %s\n      client_id: bench-%s\n      clean_session: true\n      qos: %d\n%s      subscriptions:\n%s%s",
		name, broker, name, qos, q, subscriptions, extra)
}

// ingestSubscriptions read both layouts of the ingest runs, with the
// receive time.
const ingestSubscriptions = `        - topic: bench1/{ups}/{string}/{module}/{cell}
          fields:
            - {path: v, metric: cell_voltage_volts}
        - topic: bench16/{ups}/{string}/{module}
          fields:
            - {path: "[*]", metric: cell_voltage_volts}
`

// mqtt2prometheusConfig maps the same payloads: the device id is the
// topic below the prefix; 16 metric entries for the 16 keys of a module
// message, told apart by a constant cell label.
func mqtt2prometheusConfig(broker, layout string) string {
	prefix := "bench1"
	if layout == layoutSixteen {
		prefix = "bench16"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mqtt:\n  server: %s\n  topic_path: \"%s/#\"\n  device_id_regex: \"%s/(?P<deviceid>.*)\"\n  qos: 1\ncache:\n  timeout: 60m\nmetrics:\n", broker, prefix, prefix)
	b.WriteString("  - {prom_name: cell_voltage_volts, mqtt_name: v, help: Cell voltage., type: gauge}\n")
	for c := 1; c <= 16; c++ {
		fmt.Fprintf(&b, "  - {prom_name: module_cell_voltage_volts, mqtt_name: \"%d\", help: Cell voltage., type: gauge, const_labels: {cell: \"%d\"}}\n", c, c)
	}
	return b.String()
}

// ingest measures one subscriber on one layout: a fresh mosquitto, the
// subscriber, two paho publisher processes at a rate both subscribers
// sustain, then the subscriber's CPU (from /proc), what it received and
// its resident memory before and after.
func (h *harness) ingest(layout, subscriber string) (ingestRow, error) {
	row := ingestRow{Layout: layout, Subscriber: subscriber, Series: ingestCells, ReadingsPerMessage: 1}
	entities, rate := ingestCells, 10000.0
	if layout == layoutSixteen {
		row.ReadingsPerMessage, entities, rate = 16, ingestCells/16, 3000
	}
	if h.quick {
		rate /= 4
	}
	broker, brokerURL, err := h.startMosquitto("mosquitto-" + layout + "-" + subscriber)
	if err != nil {
		return row, err
	}
	defer broker.stop()
	var sub *proc
	var received func() float64
	var dropped func() float64
	if subscriber == "cellwarden" {
		p, url, err := h.startServe("serve-ingest-"+layout, daemonMQTT("ingest", brokerURL, 1, 100000, ingestSubscriptions, ""), true)
		if err != nil {
			return row, err
		}
		sub = p
		received = func() float64 {
			b, _, _ := get(url + "/metrics")
			return metricSum(b, "cellwarden_mqtt_messages_total")
		}
		dropped = func() float64 {
			b, _, _ := get(url + "/metrics")
			return metricSum(b, "cellwarden_mqtt_dropped_messages_total")
		}
	} else {
		cfg := filepath.Join(h.dir, "mqtt2prometheus.yaml")
		os.WriteFile(cfg, []byte(mqtt2prometheusConfig(brokerURL, layout)), 0o644)
		addr := freeAddr()
		host, port, _ := net.SplitHostPort(addr)
		p, err := startProc(h.dir, "mqtt2prometheus-"+layout, nil, h.mqtt2prom, "-config", cfg, "-listen-address", host, "-listen-port", port, "-log-level", "warn")
		if err != nil {
			return row, err
		}
		sub = p
		url := "http://" + addr
		err = waitFor("mqtt2prometheus", 30*time.Second, func() bool {
			b, _, err := get(url + "/metrics")
			return err == nil && metricSum(b, "mqtt2prometheus_connected") >= 1
		})
		if err != nil {
			p.stop()
			return row, fmt.Errorf("%w\n%s", err, p.tail())
		}
		received = func() float64 {
			b, _, _ := get(url + "/metrics")
			return metricSum(b, "received_messages")
		}
		dropped = func() float64 { return 0 } // it counts none
	}
	defer sub.stop()
	time.Sleep(time.Second) // subscriptions made
	row.RSSBefore, _ = rssBytes(sub.pid())
	u := startUsage(sub.pid())
	d := 12 * time.Second
	if h.quick {
		d = 3 * time.Second
	}
	row.Published, err = h.publish(brokerURL, layout, 1, rate, d, entities, 2)
	if err != nil {
		return row, err
	}
	// Every message has been published. Seeing them all arrive takes
	// polls of the subscriber's /metrics, which are no ingest work: a poll
	// of cellwarden's 20 000 cells (14 series each) costs it about a
	// second of CPU and leaves the exposition's buffers in its heap, and
	// how many polls settle makes depends on the timing. So the resident
	// memory is read before the first poll, and the CPU of each poll,
	// measured around it, is left out.
	row.RSSAfter, _ = rssBytes(sub.pid())
	poll := func() float64 {
		pu := startUsage(sub.pid())
		v := received()
		c, _ := pu.since(sub.pid())
		row.Polls++
		row.PollCPUSeconds += c
		return v
	}
	got, at := settle(poll, float64(row.Published))
	row.Received = int(got)
	row.CPUSeconds, _ = u.since(sub.pid())
	row.CPUSeconds -= row.PollCPUSeconds
	row.WallSeconds = at.Sub(u.t0).Seconds()
	row.Dropped = int(dropped())
	return row, nil
}

// scaleRow is the whole daemon at one fleet size.
type scaleRow struct {
	Cells                 int
	SamplesPerSecond      float64 // offered: 2 per cell per second
	Received, Expected    float64 // samples in the measurement window
	Dropped               float64
	CPUCores              float64 // CPU seconds per second in the window
	RSS, HeapInuse        float64
	FirstScrapeSeconds    float64 // the first full /metrics response after the start (gzip)
	ScrapeSeconds         float64 // the slowest of the three after it
	GunzipSeconds         float64 // the harness's gunzip of that response
	ScrapeBytes           int     // uncompressed
	ScrapeWireBytes       int
	ScrapeSeries          int
	MosquittoCPUFraction  float64
	WindowSeconds         float64
	SamplesPerCPUSecond   float64
	ScrapeCPUSecondsTotal float64
}

// scale runs the whole daemon (MQTT through mosquitto, detector, metrics)
// with a fleet of cells, each reporting its voltage and temperature once a
// second in the reference layout (16 cells a message, QoS 0). After a
// warm-up it measures the daemon's CPU and memory over a window, then
// scrapes /metrics.
func (h *harness) scale(cells int) (scaleRow, error) {
	row := scaleRow{Cells: cells, SamplesPerSecond: 2 * float64(cells)}
	broker, brokerURL, err := h.startMosquitto(fmt.Sprintf("mosquitto-scale-%d", cells))
	if err != nil {
		return row, err
	}
	defer broker.stop()
	cfg := daemonMQTT("scale", brokerURL, 0, 0, `        - topic: bms/{ups}/{string}/{module}
          fields:
            - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
`, "")
	p, url, err := h.startServe(fmt.Sprintf("serve-scale-%d", cells), cfg, true)
	if err != nil {
		return row, err
	}
	defer p.stop()
	warm, window := 15*time.Second, 15*time.Second
	if h.quick {
		warm, window = 4*time.Second, 4*time.Second
	}
	modules := cells / 16
	type pubRes struct {
		n   int
		err error
	}
	pubDone := make(chan pubRes, 1)
	go func() {
		n, err := h.publish(brokerURL, layoutFleet, 0, float64(modules), warm+window+30*time.Second, modules, 1)
		pubDone <- pubRes{n, err}
	}()
	// No scrape inside the window: a scrape costs the daemon CPU of its
	// own (measured below).
	time.Sleep(warm)
	u := startUsage(p.pid())
	m0 := startUsage(broker.pid())
	time.Sleep(window)
	cpu, wall := u.since(p.pid())
	mcpu, _ := m0.since(broker.pid())
	row.WindowSeconds = wall
	row.CPUCores = cpu / wall
	row.MosquittoCPUFraction = mcpu / wall
	row.RSS, _ = rssBytes(p.pid())
	// Scrapes while the fleet keeps publishing. A scrape asks for gzip,
	// as Prometheus does; its time is the daemon's response, up to the
	// last byte. Decompressing is the scraper's work, timed apart
	// (Prometheus gunzips while it parses, on its own cores).
	// The first scrape after the start also sorts every series into
	// exposition order (which later scrapes only do for new cells) and
	// fills the daemon's buffer pools: it is shown on its own, and the
	// target is judged on the three after it, what Prometheus sees every
	// scrape interval.
	// Before each scrape the harness collects its own garbage (the last
	// response's 127 MiB of text at 100 k cells), so that its collector
	// does not take a core from the daemon while the daemon answers.
	runtime.GC()
	_, d, err := getGzip(url + "/metrics")
	if err != nil {
		return row, err
	}
	row.FirstScrapeSeconds = d.Seconds()
	sc := startUsage(p.pid())
	for range 3 {
		runtime.GC()
		wire, d, err := getGzip(url + "/metrics")
		if err != nil {
			return row, err
		}
		t0 := time.Now()
		body, err := gunzip(wire)
		if err != nil {
			return row, err
		}
		if d.Seconds() > row.ScrapeSeconds {
			row.ScrapeSeconds, row.GunzipSeconds = d.Seconds(), time.Since(t0).Seconds()
		}
		row.ScrapeBytes, row.ScrapeWireBytes, row.ScrapeSeries = len(body), len(wire), seriesCount(body)
		row.HeapInuse = metricSum(body, "go_memstats_heap_inuse_bytes")
	}
	row.ScrapeCPUSecondsTotal, _ = sc.since(p.pid())
	row.ScrapeCPUSecondsTotal /= 3
	pr := <-pubDone
	if pr.err != nil {
		return row, pr.err
	}
	// Every published message is 32 samples; all of them must arrive or
	// be counted as dropped.
	row.Expected = float64(pr.n) * 32
	b, _, err := get(url + "/metrics")
	if err != nil {
		return row, err
	}
	row.Received = metricSum(b, "cellwarden_samples_total")
	row.Dropped = metricSum(b, "cellwarden_mqtt_dropped_messages_total")
	row.SamplesPerCPUSecond = row.SamplesPerSecond / row.CPUCores
	return row, nil
}
