package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	gb "github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// reader is all of a Modbus client that cellwarden may use: read function
// codes only. Devices are read-only to us by construction.
type reader interface {
	ReadHoldingRegisters(address, quantity uint16) ([]byte, error)
	ReadInputRegisters(address, quantity uint16) ([]byte, error)
}

// ErrorKind classifies a failed read for the error counters.
type ErrorKind uint8

// Kinds of read errors.
const (
	ErrTimeout    ErrorKind = iota + 1 // no (complete) answer in time
	ErrConnection                      // refused, reset, broken pipe, closed
	ErrException                       // the device answered with a Modbus exception
	ErrProtocol                        // a malformed or mismatched answer
)

// String names the kind for metric labels.
func (k ErrorKind) String() string {
	switch k {
	case ErrTimeout:
		return "timeout"
	case ErrConnection:
		return "connection"
	case ErrException:
		return "exception"
	case ErrProtocol:
		return "protocol"
	}
	return "unknown"
}

// ReadError is a failed read of one block.
type ReadError struct {
	Kind      ErrorKind
	Exception byte // the Modbus exception code for ErrException
	Err       error
}

func (e *ReadError) Error() string { return fmt.Sprintf("%s: %v", e.Kind, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

func classify(err error) *ReadError {
	var me *gb.ModbusError
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial",
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Nobody to talk to, or the peer hung up (a restart, or a BMS
		// at its client limit): back off before dialling again.
		return &ReadError{Kind: ErrConnection, Err: err}
	case errors.As(err, &me):
		return &ReadError{Kind: ErrException, Exception: me.ExceptionCode, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, serial.ErrTimeout):
		return &ReadError{Kind: ErrTimeout, Err: err}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.As(err, new(*net.OpError)):
		return &ReadError{Kind: ErrConnection, Err: err}
	}
	return &ReadError{Kind: ErrProtocol, Err: err}
}

// linkHandler is what a Link needs of a goburrow handler. setUnit and
// setTimeout are called by the token's holder before each request.
type linkHandler interface {
	gb.ClientHandler
	Close() error
	setUnit(id byte)
	setTimeout(d time.Duration)
}

type tcpHandler struct{ *gb.TCPClientHandler }

func (h tcpHandler) setUnit(id byte) { h.SlaveId = id }

// setTimeout: goburrow's TCP transporter reads Timeout at every dial and
// request (with IdleTimeout 0 no timer of its own reads it).
func (h tcpHandler) setTimeout(d time.Duration) { h.Timeout = d }

type rtuHandler struct{ *gb.RTUClientHandler }

func (h rtuHandler) setUnit(id byte) { h.SlaveId = id }

// setTimeout: the serial library takes its read timeout when the port is
// opened, so a request with another timeout than the open port's closes
// it, and goburrow opens it again with the new one. Units that share a
// bus with one timeout never reopen it.
func (h rtuHandler) setTimeout(d time.Duration) {
	if h.Timeout != d {
		h.Close()
		h.Timeout = d
	}
}

// Link owns one connection to a Modbus TCP endpoint (or one serial bus).
// Requests on it take turns (a token passed from one to the next):
// goburrow's client is not safe for concurrent use, a shared RS-485 bus or
// gateway must not see two requests at once, and many BMSs accept only one
// or two connections. The caller's goroutine makes its own request, so a
// read costs no hand-off to another goroutine and back.
// Each request carries its own timeout (its device's), set on the handler
// by the token's holder together with the unit id, so units with
// different timeouts can share a gateway.
// After any error that is not a Modbus exception the handler is closed, so
// the next request dials afresh (goburrow v0.1.0 otherwise never recovers
// from a timeout or a server restart). A connection that had answered and
// then broke (a reset, a hang-up) is dialled again at once; failed dials,
// and connections that break before answering anything (a peer at its
// client limit), back off with jitter.
type Link struct {
	name    string
	handler linkHandler
	client  reader
	timeout time.Duration // for requests that bring none
	turn    chan struct{} // holds the token while the link is free
	stop    chan struct{}
	once    sync.Once

	// connection and backoff state, owned by the token's holder
	answered bool // the open connection has answered since it was dialled
	failures int
	retryAt  time.Time
	now      func() time.Time
}

// NewTCPLink prepares a link to a Modbus TCP endpoint (host:port); a
// request times out after its own timeout (ReadWithin), or after timeout.
func NewTCPLink(address string, timeout time.Duration) *Link {
	h := gb.NewTCPClientHandler(address)
	h.Timeout = timeout
	h.IdleTimeout = 0
	return newLink(address, tcpHandler{h}, timeout)
}

// NewRTULink prepares a link to a serial RS-485 bus: one line speed and
// parity for every unit on it; timeout as for NewTCPLink.
func NewRTULink(device string, baud int, parity string, timeout time.Duration) *Link {
	h := gb.NewRTUClientHandler(device)
	h.BaudRate, h.DataBits, h.StopBits, h.Parity, h.Timeout = baud, 8, 1, parity, timeout
	h.IdleTimeout = 0 // goburrow's idle timer closes the port from another goroutine (a data race)
	if parity == "N" {
		h.StopBits = 2 // Modbus RTU: 11 bits per character
	}
	return newLink(device, rtuHandler{h}, timeout)
}

func newLink(name string, h linkHandler, timeout time.Duration) *Link {
	l := &Link{name: name, handler: h, client: gb.NewClient(h), timeout: timeout, turn: make(chan struct{}, 1),
		stop: make(chan struct{}), now: time.Now}
	l.turn <- struct{}{}
	return l
}

// Name is the endpoint or serial device.
func (l *Link) Name() string { return l.name }

// Close waits for the request in progress, if any, closes the connection,
// and makes every later Read fail. It is idempotent.
func (l *Link) Close() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.turn // the token is kept: nobody reads any more
		l.handler.Close()
	})
	return nil
}

// Read reads one block from a unit within the link's timeout: ReadWithin
// with timeout 0.
func (l *Link) Read(ctx context.Context, unit byte, input bool, b Block) ([]uint16, *ReadError) {
	return l.ReadWithin(ctx, unit, input, b, 0)
}

// ReadWithin reads one block from a unit, waiting its turn on the link.
// ctx bounds the wait for the turn; the request itself is bounded by
// timeout (the link's own when timeout is not positive).
func (l *Link) ReadWithin(ctx context.Context, unit byte, input bool, b Block, timeout time.Duration) ([]uint16, *ReadError) {
	select {
	case <-l.stop:
		return nil, &ReadError{Kind: ErrConnection, Err: errors.New("link closed")}
	default:
	}
	select {
	case <-l.turn:
	case <-ctx.Done():
		return nil, &ReadError{Kind: ErrTimeout, Err: fmt.Errorf("waiting for %s: %w", l.name, ctx.Err())}
	case <-l.stop:
		return nil, &ReadError{Kind: ErrConnection, Err: errors.New("link closed")}
	}
	defer func() { l.turn <- struct{}{} }()
	select {
	case <-l.stop: // closed while this request waited for its turn
		return nil, &ReadError{Kind: ErrConnection, Err: errors.New("link closed")}
	default:
	}
	if timeout <= 0 {
		timeout = l.timeout
	}
	return l.serve(unit, input, b, timeout)
}

// backoff is how long to wait after n consecutive connection failures:
// 0.5 s doubling to 30 s, with ±20 % jitter.
func backoff(n int) time.Duration {
	d := 500 * time.Millisecond << min(n-1, 6)
	d = min(d, 30*time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (l *Link) serve(unit byte, input bool, b Block, timeout time.Duration) ([]uint16, *ReadError) {
	if now := l.now(); now.Before(l.retryAt) {
		return nil, &ReadError{Kind: ErrConnection, Err: fmt.Errorf("%s unreachable; next attempt in %s", l.name, l.retryAt.Sub(now).Round(time.Millisecond))}
	}
	l.handler.setUnit(unit)
	l.handler.setTimeout(timeout)
	var data []byte
	var err error
	if input {
		data, err = l.client.ReadInputRegisters(b.Start, b.Count)
	} else {
		data, err = l.client.ReadHoldingRegisters(b.Start, b.Count)
	}
	if err == nil && len(data) != 2*int(b.Count) {
		err = fmt.Errorf("asked for %d registers, got %d bytes", b.Count, len(data))
	}
	if err != nil {
		re := classify(err)
		if re.Kind == ErrException {
			l.answered = true
			return nil, re
		}
		// The connection's state is unknown (a late answer would be
		// read as the next one's): drop it and dial afresh.
		l.handler.Close()
		live := l.answered
		l.answered = false
		switch {
		case re.Kind != ErrConnection:
		case live:
			// It worked until now (a reset, a restart): dial again at
			// once; backoff starts if that fails.
			l.failures, l.retryAt = 0, time.Time{}
		default:
			l.failures++
			l.retryAt = l.now().Add(backoff(l.failures))
		}
		return nil, re
	}
	l.answered = true
	l.failures, l.retryAt = 0, time.Time{}
	regs := make([]uint16, b.Count)
	for i := range regs {
		regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
	}
	return regs, nil
}
