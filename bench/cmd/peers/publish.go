package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Payload layouts the publisher sends. Both subscribers of a comparison
// read the same bytes.
const (
	// layoutOne: one reading per message, bench1/UPS/STRING/MODULE/CELL
	// {"v":3.301}.
	layoutOne = "one"
	// layoutSixteen: 16 cells per message, bench16/UPS/STRING/MODULE
	// {"1":3.301,...,"16":3.316}.
	layoutSixteen = "sixteen"
	// layoutFleet: cellwarden's reference layout with the voltage and
	// temperature of a module's 16 cells, bms/UPS/STRING/MODULE.
	layoutFleet = "fleet"
)

// entityTopic names entity i of a layout: 16 cells a module, 16 modules a
// string, 4 strings a UPS (1024 cells).
func entityTopic(layout string, i int) string {
	if layout == layoutOne {
		cell, mod := i%16+1, i/16
		return fmt.Sprintf("bench1/u%d/%d/%d/%d", mod/64, mod/16%4+1, mod%16+1, cell)
	}
	prefix := "bench16"
	if layout == layoutFleet {
		prefix = "bms"
	}
	return fmt.Sprintf("%s/u%d/%d/%d", prefix, i/64, i/16%4+1, i%16+1)
}

// payloads returns a few variants of a layout's payload (the values move
// a little from one round to the next).
func payloads(layout string) [][]byte {
	var out [][]byte
	for k := range 4 {
		var b strings.Builder
		switch layout {
		case layoutOne:
			fmt.Fprintf(&b, `{"v":%.3f}`, 3.301+float64(k)/1000)
		case layoutSixteen:
			b.WriteByte('{')
			for c := range 16 {
				if c > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `"%d":%.3f`, c+1, 3.301+float64(c+k)/1000)
			}
			b.WriteByte('}')
		case layoutFleet:
			b.WriteString(`{"cell_voltage_volts":[`)
			for c := range 16 {
				if c > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%.3f", 3.301+float64((c+k)%5)/1000)
			}
			b.WriteString(`],"cell_temperature_celsius":[`)
			for c := range 16 {
				if c > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%.1f", 25.1+float64((c+k)%7)/10)
			}
			b.WriteString(`]}`)
		}
		out = append(out, []byte(b.String()))
	}
	return out
}

// publishResult is what a publisher process prints on standard output.
type publishResult struct {
	Published int     `json:"published"`
	Seconds   float64 `json:"seconds"`
}

// runPublisher is the "publish" subcommand: a paho client (a process of
// its own, so its CPU is not the subscriber's) that publishes a layout's
// entities round-robin at a paced rate. At QoS 1 it waits for every
// acknowledgement before it exits (mosquitto_pub -l does not, and loses
// messages at QoS 1).
func runPublisher(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	broker := fs.String("broker", "", "broker URL")
	layout := fs.String("layout", layoutOne, "payload layout: one, sixteen, fleet")
	qos := fs.Int("qos", 1, "QoS")
	rate := fs.Float64("rate", 1000, "messages per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to publish")
	entities := fs.Int("entities", 1000, "distinct topics, published round-robin")
	first := fs.Int("first", 0, "index of this publisher's first entity")
	step := fs.Int("step", 1, "entity index stride (publishers share the entities)")
	fs.Parse(args)

	opts := paho.NewClientOptions().AddBroker(*broker).
		SetClientID("bench-pub-" + strconv.Itoa(os.Getpid())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(10 * time.Second)
	c := paho.NewClient(opts)
	if t := c.Connect(); t.Wait() && t.Error() != nil {
		return t.Error()
	}
	defer c.Disconnect(250)
	var topics []string
	for i := *first; i < *entities; i += *step {
		topics = append(topics, entityTopic(*layout, i))
	}
	bodies := payloads(*layout)
	total := int(*rate * duration.Seconds())
	var pending []paho.Token
	start := time.Now()
	for n := 0; n < total; n++ {
		if due := time.Duration(float64(n) / *rate * float64(time.Second)); due > time.Since(start) {
			time.Sleep(due - time.Since(start))
		}
		t := c.Publish(topics[n%len(topics)], byte(*qos), false, bodies[(n/len(topics))%len(bodies)])
		if *qos > 0 {
			pending = append(pending, t)
			if len(pending) >= 1000 {
				for _, t := range pending {
					if t.Wait(); t.Error() != nil {
						return t.Error()
					}
				}
				pending = pending[:0]
			}
		}
	}
	for _, t := range pending {
		if t.Wait(); t.Error() != nil {
			return t.Error()
		}
	}
	return json.NewEncoder(os.Stdout).Encode(publishResult{Published: total, Seconds: time.Since(start).Seconds()})
}
