package mqtt

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"sync"
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
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration
	ackDelay     time.Duration

	wmu   sync.Mutex
	acks  []byte // PUBACKs waiting
	werr  error  // a delayed write failed or the connection was closed
	timer *time.Timer
	armed bool
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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
		if len(c.acks) >= 4*maxAcksWaiting {
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
	return c.Conn.Close()
}

// dialer returns paho's connection function: it opens the network
// connection to the broker as paho's own openConnection does in v1.5.1
// (the same schemes, proxies from the environment, TLS and websockets),
// with buffered reads and PUBACKs written together (bufferedConn).
func dialer(ackDelay time.Duration) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		conn, err := dial(uri, o)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), writeTimeout: o.WriteTimeout, ackDelay: ackDelay}, nil
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
