package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gb "github.com/goburrow/modbus"
)

// RTU over TCP: gateways that pass raw RTU frames (unit id, PDU, CRC-16)
// through a TCP connection, without the MBAP header of Modbus TCP.
// goburrow v0.1.0 has no such transport; this one plugs into its client.

// crc16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF).
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// rtuFrame appends the CRC to a unit id and PDU.
func rtuFrame(unit byte, pdu []byte) []byte {
	f := append([]byte{unit}, pdu...)
	c := crc16(f)
	return append(f, byte(c), byte(c>>8))
}

// rtuOverTCP is a goburrow packager, transporter and link handler at once.
type rtuOverTCP struct {
	address string
	timeout time.Duration
	unit    byte

	mu   sync.Mutex
	conn net.Conn
}

func (h *rtuOverTCP) setUnit(id byte) { h.unit = id }

// setTimeout sets the timeout of the next dial and request.
func (h *rtuOverTCP) setTimeout(d time.Duration) {
	h.mu.Lock()
	h.timeout = d
	h.mu.Unlock()
}

// Encode implements gb.Packager.
func (h *rtuOverTCP) Encode(pdu *gb.ProtocolDataUnit) ([]byte, error) {
	return rtuFrame(h.unit, append([]byte{pdu.FunctionCode}, pdu.Data...)), nil
}

// Verify implements gb.Packager: the answer is from the unit asked.
func (h *rtuOverTCP) Verify(req, resp []byte) error {
	if len(resp) < 5 {
		return fmt.Errorf("RTU frame of %d bytes is too short", len(resp))
	}
	if resp[0] != req[0] {
		return fmt.Errorf("answer from unit %d to a request for unit %d", resp[0], req[0])
	}
	return nil
}

// Decode implements gb.Packager.
func (h *rtuOverTCP) Decode(adu []byte) (*gb.ProtocolDataUnit, error) {
	n := len(adu)
	if got, want := uint16(adu[n-2])|uint16(adu[n-1])<<8, crc16(adu[:n-2]); got != want {
		return nil, fmt.Errorf("RTU CRC %04x, expected %04x", got, want)
	}
	return &gb.ProtocolDataUnit{FunctionCode: adu[1], Data: adu[2 : n-2]}, nil
}

// Send implements gb.Transporter: one request, one answer, within the
// timeout; the answer's length comes from its function code (read answers
// carry a byte count; exceptions are 5 bytes).
func (h *rtuOverTCP) Send(req []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		c, err := net.DialTimeout("tcp", h.address, h.timeout)
		if err != nil {
			return nil, err
		}
		h.conn = c
	}
	if err := h.conn.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		return nil, err
	}
	if _, err := h.conn.Write(req); err != nil {
		return nil, err
	}
	head := make([]byte, 3)
	if _, err := io.ReadFull(h.conn, head); err != nil {
		return nil, err
	}
	if head[1]&0x7F != req[1] {
		return nil, fmt.Errorf("answer with function code %d to a request with %d", head[1], req[1])
	}
	rest := 2 // exception: code then CRC; head already holds the code
	if head[1]&0x80 == 0 {
		switch head[1] {
		case 3, 4:
			rest = int(head[2]) + 2
		default:
			return nil, fmt.Errorf("unexpected function code %d in an answer", head[1])
		}
	}
	body := make([]byte, rest)
	if _, err := io.ReadFull(h.conn, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

// Connect implements gb.ClientHandler (the connection is made lazily).
func (h *rtuOverTCP) Connect() error { return nil }

// Close drops the connection; the next request dials afresh.
func (h *rtuOverTCP) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return nil
	}
	err := h.conn.Close()
	h.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// NewRTUOverTCPLink prepares a link to a gateway that carries Modbus RTU
// frames over TCP.
func NewRTUOverTCPLink(address string, timeout time.Duration) *Link {
	h := &rtuOverTCP{address: address, timeout: timeout}
	return newLink(address, h, timeout)
}
