package daemon

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/collector/mqtt"
)

// health is every running collector's health, for the metrics store.
func (d *daemon) health() []metrics.CollectorHealth {
	c := d.running.Load()
	if c == nil {
		return nil
	}
	var out []metrics.CollectorHealth
	for _, u := range c.fleet.Health() {
		out = append(out, metrics.CollectorHealth{Name: u.Name, Source: "modbus", Up: u.Up, LastSuccess: u.LastSuccess,
			LastDuration: u.LastPoll, Polls: u.Polls, Skipped: u.Skipped, Errors: u.Errors})
	}
	for _, m := range c.mqtt {
		h := m.Health()
		ch := metrics.CollectorHealth{Name: h.Name, Source: "mqtt", Up: h.Connected && h.Subscribed,
			Errors: map[string]uint64{"connection_lost": h.ConnectionLosses, "subscribe_failed": h.SubscribeFailures,
				"connect_failed": h.ConnectAttempts - h.Connects}}
		for _, t := range h.LastMessage {
			if t.After(ch.LastSuccess) {
				ch.LastSuccess = t
			}
		}
		out = append(out, ch)
	}
	return out
}

// mqttReasonNames are the bad-input reasons of the MQTT collector.
func mqttReasonNames() []string {
	var out []string
	for _, r := range mqtt.Reasons() {
		out = append(out, r.String())
	}
	return out
}

// countMQTT adds the MQTT collectors' new decode errors to
// cellwarden_bad_input_total (called from the detector goroutine).
func (d *daemon) countMQTT() {
	c := d.running.Load()
	if c == nil {
		return
	}
	for _, m := range c.mqtt {
		h := m.Health()
		seen := c.seen[h.Name]
		if seen == nil {
			seen = map[string]uint64{}
			c.seen[h.Name] = seen
		}
		for reason, n := range h.DecodeErrors {
			if n > seen[reason] {
				d.self.BadInput("mqtt", reason, int(n-seen[reason]))
				seen[reason] = n
			}
		}
	}
}

// mqttMetrics exports what only the MQTT collectors know: the session,
// traffic, the consumer queue, drops and the brokers' own statistics.
type mqttMetrics struct{ d *daemon }

var (
	mqttLabels    = []string{"collector"}
	mqttConnected = prometheus.NewDesc("cellwarden_mqtt_connected", "1 while the MQTT session is up and subscribed.", mqttLabels, nil)
	mqttMessages  = prometheus.NewDesc("cellwarden_mqtt_messages_total", "MQTT data messages received.", mqttLabels, nil)
	mqttBytes     = prometheus.NewDesc("cellwarden_mqtt_received_bytes_total", "Bytes of MQTT data messages received.", mqttLabels, nil)
	mqttReconnect = prometheus.NewDesc("cellwarden_mqtt_connection_losses_total", "MQTT connections lost.", mqttLabels, nil)
	mqttDropped   = prometheus.NewDesc("cellwarden_mqtt_dropped_messages_total",
		"Well-formed MQTT messages that never reached the detector, by reason (queue_full, shutdown).", []string{"collector", "reason"}, nil)
	mqttQueued = prometheus.NewDesc("cellwarden_mqtt_queue_messages", "MQTT messages waiting for the detector.", mqttLabels, nil)
	mqttBroker = prometheus.NewDesc("cellwarden_mqtt_broker_stat",
		"The last value of each subscribed $SYS statistic of the broker, e.g. $SYS/broker/publish/messages/dropped.", []string{"collector", "topic"}, nil)
	mqttTopicMessages = prometheus.NewDesc("cellwarden_mqtt_topic_messages_total",
		"MQTT data messages received, by the subscription topic template that matched them.", []string{"collector", "topic"}, nil)
	mqttTopicErrors = prometheus.NewDesc("cellwarden_mqtt_decode_errors_total",
		"MQTT messages (or parts of them) refused, by topic template and reason (cellwarden_bad_input_total sums them by reason).",
		[]string{"collector", "topic", "reason"}, nil)
	mqttLastMessage = prometheus.NewDesc("cellwarden_mqtt_last_message_timestamp_seconds",
		"Receive time of the last MQTT message that gave a sample, by source: the string (ups/string), or the UPS when the topic names no string.",
		[]string{"collector", "source"}, nil)
)

func (m *mqttMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mqttConnected, mqttMessages, mqttBytes, mqttReconnect, mqttDropped, mqttQueued, mqttBroker,
		mqttTopicMessages, mqttTopicErrors, mqttLastMessage} {
		ch <- d
	}
}

func (m *mqttMetrics) Collect(ch chan<- prometheus.Metric) {
	c := m.d.running.Load()
	if c == nil {
		return
	}
	for _, col := range c.mqtt {
		h := col.Health()
		up := 0.0
		if h.Connected && h.Subscribed {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(mqttConnected, prometheus.GaugeValue, up, h.Name)
		ch <- prometheus.MustNewConstMetric(mqttMessages, prometheus.CounterValue, float64(h.Messages), h.Name)
		ch <- prometheus.MustNewConstMetric(mqttBytes, prometheus.CounterValue, float64(h.Bytes), h.Name)
		ch <- prometheus.MustNewConstMetric(mqttReconnect, prometheus.CounterValue, float64(h.ConnectionLosses), h.Name)
		ch <- prometheus.MustNewConstMetric(mqttQueued, prometheus.GaugeValue, float64(h.Queued), h.Name)
		for _, r := range slices.Sorted(maps.Keys(h.Dropped)) {
			ch <- prometheus.MustNewConstMetric(mqttDropped, prometheus.CounterValue, float64(h.Dropped[r]), h.Name, r)
		}
		for _, t := range slices.Sorted(maps.Keys(h.Broker)) {
			ch <- prometheus.MustNewConstMetric(mqttBroker, prometheus.GaugeValue, h.Broker[t], h.Name, t)
		}
		for _, t := range slices.Sorted(maps.Keys(h.MessagesByTopic)) {
			ch <- prometheus.MustNewConstMetric(mqttTopicMessages, prometheus.CounterValue, float64(h.MessagesByTopic[t]), h.Name, t)
		}
		for _, t := range slices.Sorted(maps.Keys(h.DecodeErrorsByTopic)) {
			byReason := h.DecodeErrorsByTopic[t]
			for _, r := range slices.Sorted(maps.Keys(byReason)) {
				ch <- prometheus.MustNewConstMetric(mqttTopicErrors, prometheus.CounterValue, float64(byReason[r]), h.Name, t, r)
			}
		}
		for _, src := range slices.Sorted(maps.Keys(h.LastMessage)) {
			ch <- prometheus.MustNewConstMetric(mqttLastMessage, prometheus.GaugeValue, float64(h.LastMessage[src].UnixNano())/1e9, h.Name, src)
		}
	}
}

// modbusMetrics exports what only the Modbus collectors know: the BMSs'
// own alarm bits.
type modbusMetrics struct{ d *daemon }

var bmsAlarm = prometheus.NewDesc("cellwarden_bms_alarm",
	"1 while the BMS reports the alarm bit set, 0 while clear, as the device's last poll read it: a register map's alarms, SunSpec 802/803/804 event bits.",
	[]string{"collector", "ups", "string", "alarm"}, nil)

func (m *modbusMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- bmsAlarm }

func (m *modbusMetrics) Collect(ch chan<- prometheus.Metric) {
	c := m.d.running.Load()
	if c == nil {
		return
	}
	for _, a := range c.fleet.Alarms() {
		v := 0.0
		if a.Active {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(bmsAlarm, prometheus.GaugeValue, v, a.Unit, a.UPS, a.String, a.Name)
	}
}
