package mqtt

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/net/proxy"
)

// readBufferSize is the read buffer of a broker connection.
const readBufferSize = 64 << 10

// maxAcksWaiting PUBACKs are written at once, without waiting for more:
// fewer than any broker's in-flight window (mosquitto's default is 20
// messages).
const maxAcksWaiting = 16

// bufferedConn is the broker connection as paho sees it.
//
// Reads go through a buffer. paho reads each packet with three or more
// reads (its type byte, each byte of its length, then the rest), each a
// system call on a bare connection; through the buffer, one system call
// reads every packet that has arrived. Only paho's reading goroutine
// (and, before it starts, the CONNACK read of the same connection
// attempt) reads the connection.
//
// PUBACKs are written together: paho writes each as a 4-byte write, a
// system call (and a wake-up of the broker) per message received. A PUBACK
// waits up to ackDelay for the next ones (at most maxAcksWaiting are held
// back, so a broker's in-flight window never fills up with messages
// waiting for them), and every other packet (PINGREQ,
// SUBSCRIBE, DISCONNECT) first writes the PUBACKs waiting before it, so
// the broker sees the packets in paho's order. At QoS 1 the acknowledgement
// only tells the broker that it need not send the message again: a PUBACK
// that waits delays that by at most ackDelay (the handler has queued the
// message by then); one lost with the connection brings the message again,
// as at-least-once delivery allows. A failed delayed write closes the
// connection, which paho's reader reports as lost. With ackDelay 0 every
// packet is written at once.
//
// Reads wait for messages to gather (readDelay): when the buffer is empty
// the reader sleeps readDelay before it reads the connection again, so
// that one read (and one wake-up of paho's goroutines, which then pass the
// messages on one after the other while they are running) takes every
// message that arrived meanwhile, rather than one wake-up of each of them
// per message. A message after a quiet spell is read as soon as it comes:
// the reader is blocked in the read by then. Nor does the reader wait
// after a read that brought maxAcksWaiting QoS 1 messages or more: they
// may be the broker's whole in-flight window (mosquitto's default is 20),
// which only the PUBACKs open again. With read coalescing on, the
// PUBACKs of what a read brought are written as soon as paho has
// acknowledged every QoS 1 message read so far, so that the broker's
// in-flight window is freed as soon as the batch has been taken in.
// With readDelay 0 every read goes to the connection at once.
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration
	ackDelay     time.Duration
	readDelay    time.Duration

	// The reading goroutine's walk over the packet headers of what it
	// read, and the count of QoS 1 PUBLISH packets among them.
	walk     headerWalk
	qos1Read atomic.Uint64
	// windowFull: the last read brought maxAcksWaiting QoS 1 messages or
	// more, which may be all the broker's in-flight window lets through
	// before their PUBACKs: the next read does not wait.
	windowFull bool
	// gate, when set, learns where the reader is in its cycle.
	gate *readGate

	wmu       sync.Mutex
	acks      []byte // PUBACKs waiting
	acksTaken uint64 // PUBACKs paho wrote, waiting or written
	werr      error  // a delayed write failed or the connection was closed
	timer     *time.Timer
	armed     bool
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.readDelay > 0 && c.r.Buffered() == 0 {
		if c.walk.state == 0 && !c.windowFull { // not inside a packet
			time.Sleep(c.readDelay)
		}
		c.gate.enterRead()
		// One read of the connection; the bytes it brought are all new.
		if _, err := c.r.Peek(1); err != nil {
			return 0, err
		}
		b, _ := c.r.Peek(c.r.Buffered())
		pubs, qos1 := c.walk.publishes(b)
		if pubs > 1 {
			// A lone message (after a quiet spell) wakes the consumer
			// at once; several are taken together.
			c.gate.leaveRead(c)
		}
		c.qos1Read.Add(uint64(qos1))
		c.windowFull = qos1 >= maxAcksWaiting
	}
	return c.r.Read(p)
}

// readGate defers the wake-ups of the collector's consumer to the end of
// the reader's gathering: the messages of one read, passed on by paho's
// goroutines one after the other, are then taken from the queue in one
// batch rather than in several. While the reader waits in a read of the
// connection (or is gone) nothing more of the last read is coming, and
// the message handler wakes the consumer itself, as without a read delay.
// A nil gate does nothing.
type readGate struct {
	// reading: the reader is in a read of the connection, has failed or
	// the connection is closed. Set before wake is called, read by the
	// message handler after it has queued a message: one of the two
	// sees the other's message.
	reading atomic.Bool
	// conn is the connection of the last dial: the reader of an earlier
	// one, closed, cannot mark the reader of this one busy.
	conn atomic.Pointer[bufferedConn]
	// wake wakes the consumer if messages wait.
	wake func()
}

// enterRead is called before the reader reads the connection (and when
// the connection closes): what the last read brought has been handed on,
// and the consumer is woken for whatever of it is queued.
func (g *readGate) enterRead() {
	if g == nil {
		return
	}
	g.reading.Store(true)
	g.wake()
}

// leaveRead is called when a read of c has brought data: the messages in
// it are about to be handed on, and enterRead wakes the consumer for them.
func (g *readGate) leaveRead(c *bufferedConn) {
	if g != nil && g.conn.Load() == c {
		g.reading.Store(false)
	}
}

// waitsInRead reports whether the reader waits in a read of the
// connection, so that no enterRead is coming soon; without a gate, true.
func (g *readGate) waitsInRead() bool { return g == nil || g.reading.Load() }

// headerWalk follows the MQTT packets in a stream of bytes read, a piece
// at a time, by their fixed headers.
type headerWalk struct {
	state  int // 0: at a packet's first byte; 1: in its length; 2: in its body
	first  byte
	length int
	shift  uint
	skip   int // bytes of the body still to come
}

// publishes walks the next bytes of the stream and returns how many
// PUBLISH packets, and QoS 1 ones among them, begin in them (counted once
// their header is whole). A malformed length ends paho's connection; the
// walk then stops counting.
func (w *headerWalk) publishes(b []byte) (pubs, qos1 int) {
	for i := 0; i < len(b); {
		switch w.state {
		case 0:
			w.first, w.length, w.shift, w.state = b[i], 0, 0, 1
			i++
		case 1:
			x := b[i]
			i++
			if w.shift > 21 {
				w.state = 3
				continue
			}
			w.length |= int(x&0x7f) << w.shift
			w.shift += 7
			if x&0x80 != 0 {
				continue
			}
			if w.first>>4 == 3 { // PUBLISH
				pubs++
				if w.first&0x06 == 0x02 {
					qos1++
				}
			}
			w.skip, w.state = w.length, 2
			if w.skip == 0 {
				w.state = 0
			}
		case 2:
			k := min(w.skip, len(b)-i)
			i += k
			w.skip -= k
			if w.skip == 0 {
				w.state = 0
			}
		default:
			return pubs, qos1
		}
	}
	return pubs, qos1
}

// isPuback reports whether p is exactly one PUBACK packet.
func isPuback(p []byte) bool { return len(p) == 4 && p[0] == 0x40 && p[1] == 0x02 }

func (c *bufferedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.ackDelay > 0 && isPuback(p) {
		c.acks = append(c.acks, p...)
		c.acksTaken++
		if len(c.acks) >= 4*maxAcksWaiting || c.readDelay > 0 && c.acksTaken >= c.qos1Read.Load() {
			return len(p), c.flushLocked(c.writeTimeout)
		}
		if !c.armed {
			c.armed = true
			if c.timer == nil {
				c.timer = time.AfterFunc(c.ackDelay, c.flushLater)
			} else {
				c.timer.Reset(c.ackDelay)
			}
		}
		return len(p), nil
	}
	if err := c.flushLocked(c.writeTimeout); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// flushLater writes the PUBACKs waiting when their delay is over.
func (c *bufferedConn) flushLater() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armed = false
	if err := c.flushLocked(c.writeTimeout); err != nil {
		c.Conn.Close()
	}
}

// flushLocked writes the PUBACKs waiting, within timeout.
func (c *bufferedConn) flushLocked(timeout time.Duration) error {
	if len(c.acks) == 0 || c.werr != nil {
		return c.werr
	}
	if timeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	}
	_, err := c.Conn.Write(c.acks)
	if timeout > 0 {
		c.Conn.SetWriteDeadline(time.Time{})
	}
	c.acks = c.acks[:0]
	if err != nil {
		c.werr = err
	}
	return err
}

// Close writes the PUBACKs waiting, if it can at once, and closes the
// connection.
func (c *bufferedConn) Close() error {
	c.wmu.Lock()
	c.flushLocked(min(c.writeTimeout, 100*time.Millisecond))
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	c.wmu.Unlock()
	c.gate.enterRead()
	return c.Conn.Close()
}

// dialer returns paho's connection function: it opens the network
// connection to the broker as paho's own openConnection does in v1.5.1
// (the same schemes, proxies from the environment, TLS and websockets),
// with buffered reads and PUBACKs written together (bufferedConn).
func dialer(ackDelay, readDelay time.Duration, gate *readGate) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		conn, err := dial(uri, o)
		if err != nil {
			return nil, err
		}
		bc := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), writeTimeout: o.WriteTimeout, ackDelay: ackDelay, readDelay: readDelay, gate: gate}
		if gate != nil {
			gate.conn.Store(bc)
		}
		return bc, nil
	}
}

// dial opens the network connection to the broker.
func dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri // gorilla/websocket refuses URLs with user info
		u.User = nil
		var tc *tls.Config
		if uri.Scheme == "wss" {
			tc = o.TLSConfig
		}
		conn, err = paho.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "tcp", "mqtt":
		conn, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts":
		if os.Getenv("all_proxy") == "" {
			conn, err = tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
			break
		}
		var raw net.Conn
		if raw, err = proxy.FromEnvironment().Dial("tcp", uri.Host); err != nil {
			break
		}
		tc := tls.Client(raw, o.TLSConfig)
		if err = tc.Handshake(); err != nil {
			raw.Close()
			break
		}
		conn = tc
	default:
		err = errors.New("unknown protocol")
	}
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// nopStore is paho's message store for this collector: it keeps nothing.
// paho stores every QoS 1 message received until its PUBACK is sent, and
// every message it publishes or subscription it makes until acknowledged,
// to send them again after a reconnect. Of those this collector has only
// the received messages, and paho v1.5.1 never delivers a stored received
// QoS 1 message again (resume discards it): the broker sends whatever was
// not acknowledged again. So the store only cost two map operations, a
// lock and two formatted keys per message. Subscriptions are made again in
// OnConnect, not resumed from the store (ResumeSubs is off); QoS 2, whose
// PUBREL the store would keep, is not offered.
type nopStore struct{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}
