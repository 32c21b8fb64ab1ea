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
