package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type simPublishOptions struct {
	broker   string
	scenario string
	seed     uint64
	speed    float64
	format   string
	prefix   string
	qos      int
	clientID string
}

// addMQTTPublishFlags adds the broker and message flags of sim publish
// (and of sim serve, where --mqtt is optional).
func addMQTTPublishFlags(cmd *kingpin.CmdClause, o *simPublishOptions, required bool) {
	broker := cmd.Flag("mqtt", "Broker URL to publish the fleet to, e.g. tcp://127.0.0.1:1883.")
	if required {
		broker = broker.Required()
	}
	broker.StringVar(&o.broker)
	cmd.Flag("format", "MQTT: json (one message per module, string and UPS per poll) or value (one number per topic).").Default("json").StringVar(&o.format)
	cmd.Flag("prefix", "MQTT: first topic level.").Default("bms").StringVar(&o.prefix)
	cmd.Flag("qos", "MQTT: QoS of the messages, 0 or 1.").Default("1").IntVar(&o.qos)
	cmd.Flag("client-id", "MQTT client id.").Default("cellwarden-sim").StringVar(&o.clientID)
}

// jsonDoc gathers one poll's readings of one entity (a module, string or
// UPS) as the reference JSON payload: {"time": RFC 3339, METRIC: value,
// ...}, with a module's cell metrics as arrays indexed by cell number.
type jsonDoc struct {
	topic  string
	values map[telemetry.Metric]float64
	cells  map[telemetry.Metric][]float64
}

// runSimPublish plays a scenario in (scaled) real time and publishes it to
// an MQTT broker: in the reference JSON layout (PREFIX/UPS/STRING/MODULE,
// PREFIX/UPS/STRING, PREFIX/UPS, one message per entity and poll, with
// the poll's time) or as plain values (PREFIX/UPS[/STRING[/MODULE[/CELL]]]/METRIC,
// one number per message).
func runSimPublish(o simPublishOptions, stdout io.Writer, log *zap.Logger) error {
	suite := sim.Suite(o.seed)
	i := slices.IndexFunc(suite, func(s *sim.Scenario) bool { return s.Name == o.scenario })
	switch {
	case i < 0:
		return fmt.Errorf("no scenario %q (see cellwarden sim list)", o.scenario)
	case o.speed <= 0:
		return errors.New("--speed must be > 0")
	case o.format != "json" && o.format != "value":
		return fmt.Errorf("--format must be json or value, not %q", o.format)
	case o.qos != 0 && o.qos != 1:
		return fmt.Errorf("--qos must be 0 or 1")
	}
	sc := suite[i]
	opts := paho.NewClientOptions().AddBroker(o.broker).SetClientID(o.clientID).SetConnectTimeout(2 * time.Second).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(2 * time.Second).SetOrderMatters(false)
	client := paho.NewClient(opts)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connecting to %s: %w", o.broker, err)
	}
	defer client.Disconnect(500)
	fmt.Fprintf(stdout, "publishing scenario %s (%s) to %s under %s/, %s format, QoS %d, %gx real time\n",
		sc.Name, sc.Description, o.broker, o.prefix, o.format, o.qos, o.speed)
	var published, failed uint64
	var pending []paho.Token
	publish := func(topic string, payload []byte) {
		pending = append(pending, client.Publish(topic, byte(o.qos), false, payload))
	}
	// settle waits for the publishes of one poll, so that a broker outage
	// shows as failures rather than an unbounded backlog.
	settle := func() {
		for _, t := range pending {
			if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
				failed++
				continue
			}
			published++
		}
		pending = pending[:0]
	}
	batch := newJSONBatch(o.prefix)
	flush := func() error {
		batch.flush(publish)
		settle()
		return nil
	}
	each := func(s telemetry.Sample, e telemetry.Entity) error {
		if o.format == "value" {
			publish(topicOf(o.prefix, e)+"/"+s.Metric.String(), []byte(formatValue(s.Value)))
			return nil
		}
		return batch.add(s, e)
	}
	newPoll := flush
	if o.format == "value" {
		newPoll = func() error { settle(); return nil }
	}
	finished, err := play(ctx, sc, o.speed, newPoll, each)
	if err != nil {
		return err
	}
	if finished {
		flush()
	}
	log.Info("scenario published", zap.String("scenario", sc.Name), zap.Bool("finished", finished),
		zap.Uint64("messages", published), zap.Uint64("failed", failed))
	return nil
}

// jsonBatch gathers one poll's readings into the reference JSON documents,
// one per module, string and UPS.
type jsonBatch struct {
	prefix   string
	docs     map[telemetry.Entity]*jsonDoc
	order    []telemetry.Entity
	pollTime int64
}

func newJSONBatch(prefix string) *jsonBatch {
	return &jsonBatch{prefix: prefix, docs: map[telemetry.Entity]*jsonDoc{}}
}

// add puts a reading into its entity's document (a cell's into its module's
// arrays).
func (b *jsonBatch) add(s telemetry.Sample, e telemetry.Entity) error {
	b.pollTime = s.Time
	key := e
	if s.Metric.Level() == telemetry.LevelCell {
		key.Cell = ""
	}
	d := b.docs[key]
	if d == nil {
		d = &jsonDoc{topic: topicOf(b.prefix, key), values: map[telemetry.Metric]float64{}, cells: map[telemetry.Metric][]float64{}}
		b.docs[key] = d
		b.order = append(b.order, key)
	}
	if s.Metric.Level() != telemetry.LevelCell {
		d.values[s.Metric] = s.Value
		return nil
	}
	n, err := strconv.Atoi(e.Cell)
	if err != nil || n < 1 || n > 4096 {
		return fmt.Errorf("cell %q has no place in an array", e.Cell)
	}
	a := d.cells[s.Metric]
	for len(a) < n {
		a = append(a, math.NaN())
	}
	a[n-1] = s.Value
	d.cells[s.Metric] = a
	return nil
}

// flush publishes the gathered documents, stamped with the poll's time,
// and starts the next poll.
func (b *jsonBatch) flush(publish func(topic string, payload []byte)) {
	for _, e := range b.order {
		publish(b.docs[e].topic, b.docs[e].encode(b.pollTime))
	}
	clear(b.docs)
	b.order = b.order[:0]
}

// topicOf is PREFIX/UPS[/STRING[/MODULE[/CELL]]].
func topicOf(prefix string, e telemetry.Entity) string {
	parts := []string{prefix, e.UPS}
	for _, p := range []string{e.String, e.Module, e.Cell} {
		if p == "" {
			break
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/")
}

func formatValue(v float64) string {
	if math.IsNaN(v) {
		return "null"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// encode renders the document with its metrics in catalogue order.
func (d *jsonDoc) encode(t int64) []byte {
	b := []byte(`{"time":"`)
	b = time.Unix(0, t).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, m := range telemetry.Metrics() {
		if a, ok := d.cells[m]; ok {
			b = append(b, `,"`+m.String()+`":[`...)
			for i, v := range a {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, formatValue(v)...)
			}
			b = append(b, ']')
		} else if v, ok := d.values[m]; ok {
			b = append(b, `,"`+m.String()+`":`...)
			b = append(b, formatValue(v)...)
		}
	}
	return append(b, '}')
}
