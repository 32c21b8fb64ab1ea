package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// recordingConn is a connection that records what is written to it, each
// write with the (fake) time it was made.
type recordingConn struct {
	net.Conn // nil: only Write, Close and the deadlines are used
	mu       sync.Mutex
	writes   []string
	at       []time.Duration
	start    time.Time
	fail     error
	closed   bool
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, string(p))
	c.at = append(c.at, time.Since(c.start))
	return len(p), nil
}

func (c *recordingConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recordingConn) record() ([]string, []time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes), slices.Clone(c.at), c.closed
}

func puback(id byte) []byte { return []byte{0x40, 0x02, 0, id} }

// PUBACKs wait up to the delay and go out in one write; any other packet
// takes the PUBACKs before it along, so the order is paho's; a full batch
// goes at once; with no delay every packet is written as it comes.
func TestPubacksAreWrittenTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recordingConn{start: time.Now()}
		c := &bufferedConn{Conn: rc, writeTimeout: time.Second, ackDelay: time.Millisecond}
		c.Write(puback(1))
		c.Write(puback(2))
		time.Sleep(500 * time.Microsecond)
		c.Write(puback(3))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		c.Write(puback(4))
		c.Write([]byte{0xc0, 0x00}) // PINGREQ
		for i := range maxAcksWaiting {
			c.Write(puback(byte(10 + i)))
		}
		writes, at, _ := rc.record()
		want := []string{string(puback(1)) + string(puback(2)) + string(puback(3)), string(puback(4)), "\xc0\x00", ""}
		for i := range maxAcksWaiting {
			want[3] += string(puback(byte(10 + i)))
		}
		if !slices.Equal(writes, want) {
			t.Errorf("writes %q\nwant   %q", writes, want)
		}
		if len(at) > 0 && at[0] != time.Millisecond {
			t.Errorf("first PUBACKs written after %v, want the delay (1ms)", at[0])
		}

		rc2 := &recordingConn{start: time.Now()}
		now := &bufferedConn{Conn: rc2, writeTimeout: time.Second}
		now.Write(puback(1))
		now.Write(puback(2))
		if writes, _, _ := rc2.record(); len(writes) != 2 {
			t.Errorf("without a delay: writes %q, want each PUBACK at once", writes)
		}
	})
}

// Closing writes what waits; a delayed write that fails closes the
// connection (paho's reader then reports it lost) and fails later writes.
func TestPubacksOnCloseAndFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recordingConn{start: time.Now()}
		c := &bufferedConn{Conn: rc, writeTimeout: time.Second, ackDelay: time.Millisecond}
		c.Write(puback(1))
		c.Close()
		if writes, _, closed := rc.record(); !slices.Equal(writes, []string{string(puback(1))}) || !closed {
			t.Errorf("after Close: writes %q, closed %v", writes, closed)
		}
		if _, err := c.Write(puback(2)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after Close: %v", err)
		}

		broken := errors.New("broken pipe")
		rc2 := &recordingConn{start: time.Now()}
		c2 := &bufferedConn{Conn: rc2, writeTimeout: time.Second, ackDelay: time.Millisecond}
		c2.Write(puback(1))
		rc2.mu.Lock()
		rc2.fail = broken
		rc2.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if _, _, closed := rc2.record(); !closed {
			t.Error("a failed delayed write left the connection open")
		}
		if _, err := c2.Write([]byte{0xc0, 0x00}); !errors.Is(err, broken) {
			t.Errorf("write after a failed delayed write: %v", err)
		}
	})
}

// countingConn counts the reads that reach the connection.
type countingConn struct {
	net.Conn
	r     *bytes.Reader
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// Reads go through the buffer: paho's byte-by-byte reads of the packets'
// headers do not each reach the connection.
func TestReadsAreBuffered(t *testing.T) {
	packets := bytes.Repeat([]byte{0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y'}, 100)
	cc := &countingConn{r: bytes.NewReader(packets)}
	c := &bufferedConn{Conn: cc, r: bufio.NewReaderSize(cc, readBufferSize)}
	var got []byte
	one := make([]byte, 1)
	for len(got) < len(packets) {
		n, err := c.Read(one)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, one[:n]...)
	}
	if !bytes.Equal(got, packets) || cc.reads != 1 {
		t.Errorf("read %d bytes (equal: %v) in %d reads of the connection, want 1", len(got), bytes.Equal(got, packets), cc.reads)
	}
}

// publish is a PUBLISH packet of topic "t" with a 2-byte packet id at QoS
// 1 and 2, then body (which may make the length take several bytes).
func publish(qos byte, dup bool, body int) []byte {
	first := 0x30 | qos<<1
	if dup {
		first |= 0x08
	}
	rest := []byte{0, 1, 't'}
	if qos > 0 {
		rest = append(rest, 0, 7)
	}
	rest = append(rest, bytes.Repeat([]byte{'x'}, body)...)
	p := []byte{first}
	for n := len(rest); ; {
		b := byte(n & 0x7f)
		if n >>= 7; n > 0 {
			p = append(p, b|0x80)
			continue
		}
		p = append(p, b)
		break
	}
	return append(p, rest...)
}

// The walk counts the (QoS 1) PUBLISH packets of a stream cut anywhere:
// inside a length of several bytes, inside a body, between packets.
func TestHeaderWalkCountsQoS1Publishes(t *testing.T) {
	var stream []byte
	for _, p := range [][]byte{
		publish(1, false, 5), publish(0, false, 5), {0xd0, 0x00}, // PINGRESP
		publish(1, true, 300), publish(2, false, 1), publish(1, false, 20000),
		{0x90, 0x03, 0, 1, 1}, // SUBACK
		publish(1, false, 0),
	} {
		stream = append(stream, p...)
	}
	for _, cut := range []int{1, 2, 3, 7, 64, 1000, len(stream)} {
		var w headerWalk
		pubs, qos1 := 0, 0
		for b := stream; len(b) > 0; {
			k := min(cut, len(b))
			p, q := w.publishes(b[:k])
			pubs, qos1 = pubs+p, qos1+q
			b = b[k:]
		}
		if pubs != 6 || qos1 != 4 || w.state != 0 {
			t.Errorf("pieces of %d bytes: %d publishes, %d QoS 1, state %d; want 6, 4 and 0", cut, pubs, qos1, w.state)
		}
	}
}

// streamConn is a connection whose reads take every byte the broker sent
// so far, as from a socket, and block while there is none; its writes are
// recorded.
type streamConn struct {
	*recordingConn
	in   chan []byte // closed: the connection is closed
	rest []byte
}

func (c *streamConn) send(p []byte) { c.in <- p }

func (c *streamConn) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		b, ok := <-c.in
		if !ok {
			return 0, net.ErrClosed
		}
		c.rest = b
	}
	for len(c.rest) < len(p) {
		select {
		case b, ok := <-c.in:
			if ok {
				c.rest = append(c.rest, b...)
				continue
			}
		default:
		}
		break
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// With a read delay, what arrives while the reader waits comes in one
// read; a message after a quiet spell is read at once; the PUBACKs of what
// a read brought go out in one write as soon as every QoS 1 message read
// is acknowledged, without waiting for the acknowledgement delay; after a
// read that may be the broker's whole in-flight window the reader does not
// wait.
func TestReadDelayGathersMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recordingConn{start: time.Now()}
		sc := &streamConn{recordingConn: rc, in: make(chan []byte, 10)}
		c := &bufferedConn{Conn: sc, r: bufio.NewReaderSize(sc, readBufferSize), writeTimeout: time.Second,
			ackDelay: 50 * time.Millisecond, readDelay: 10 * time.Millisecond}
		got := make(chan time.Duration, 10)
		go func() {
			// paho's reader: a packet at a time.
			for {
				if _, err := packets.ReadPacket(c); err != nil {
					close(got)
					return
				}
				got <- time.Since(rc.start)
			}
		}()
		time.Sleep(time.Second) // a quiet spell: the reader waits in the read
		start := time.Since(rc.start)
		go func() {
			sc.send(publish(1, false, 3))
			time.Sleep(2 * time.Millisecond)
			sc.send(publish(1, false, 3))
			time.Sleep(2 * time.Millisecond)
			sc.send(publish(0, false, 3))
			sc.send(publish(1, false, 3))
		}()
		var at []time.Duration
		for range 4 {
			at = append(at, <-got-start)
		}
		want := []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
		if !slices.Equal(at, want) {
			t.Errorf("packets read at %v, want %v", at, want)
		}
		c.Write(puback(1))
		if writes, _, _ := rc.record(); len(writes) != 0 {
			t.Errorf("writes %q before every message read was acknowledged", writes)
		}
		c.Write(puback(2))
		c.Write(puback(3))
		writes, wat, _ := rc.record()
		if want := []string{string(puback(1)) + string(puback(2)) + string(puback(3))}; !slices.Equal(writes, want) {
			t.Errorf("writes %q, want %q", writes, want)
		}
		if len(wat) > 0 && wat[0]-start != 10*time.Millisecond {
			t.Errorf("PUBACKs written %v after the first message, want at once (10ms)", wat[0]-start)
		}
		// A read that may be the broker's whole in-flight window: the
		// next read does not wait.
		time.Sleep(time.Second)
		start = time.Since(rc.start)
		sc.send(bytes.Repeat(publish(1, false, 3), maxAcksWaiting))
		time.Sleep(time.Millisecond)
		sc.send(publish(1, false, 3))
		at = at[:0]
		for range maxAcksWaiting + 1 {
			at = append(at, <-got-start)
		}
		if at[0] != 0 || at[maxAcksWaiting] != time.Millisecond {
			t.Errorf("after a read of %d QoS 1 messages the next one was read after %v, want at once (1ms)", maxAcksWaiting, at[maxAcksWaiting])
		}
		close(sc.in)
		for range got {
		}
	})
}

// A read of several messages marks the reader busy, so that the consumer
// is woken once for them when it reads again; a read of one message
// (after a quiet spell) does not: the handler wakes the consumer at once.
func TestReadGateAfterLoneAndSeveralMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recordingConn{start: time.Now()}
		sc := &streamConn{recordingConn: rc, in: make(chan []byte, 10)}
		gate := &readGate{wake: func() {}}
		c := &bufferedConn{Conn: sc, r: bufio.NewReaderSize(sc, readBufferSize), readDelay: 10 * time.Millisecond, gate: gate}
		gate.conn.Store(c)
		got := make(chan bool)
		go func() {
			for {
				if _, err := packets.ReadPacket(c); err != nil {
					close(got)
					return
				}
				got <- gate.waitsInRead()
			}
		}()
		time.Sleep(time.Second)
		sc.send(publish(1, false, 3))
		if !<-got {
			t.Error("a lone message marked the reader busy")
		}
		time.Sleep(time.Second)
		sc.send(append(publish(1, false, 3), publish(0, false, 3)...))
		first, second := <-got, <-got
		if first || second {
			t.Error("a read of two messages left the consumer to the handler")
		}
		close(sc.in)
		for range got {
		}
	})
}
