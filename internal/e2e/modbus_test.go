package e2e

import (
	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"io"
	"log"
	"regexp"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"
)

// littleEndianBMS serves cell voltages in millivolts with their bytes
// swapped, as some gateways do, and records every request.
type littleEndianBMS struct{ writes int }

func (b *littleEndianBMS) HandleCoils(req *sv.CoilsRequest) ([]bool, error) {
	b.writes++
	return nil, sv.ErrIllegalFunction
}
func (b *littleEndianBMS) HandleDiscreteInputs(*sv.DiscreteInputsRequest) ([]bool, error) {
	return nil, sv.ErrIllegalFunction
}
func (b *littleEndianBMS) HandleInputRegisters(*sv.InputRegistersRequest) ([]uint16, error) {
	return nil, sv.ErrIllegalFunction
}
func (b *littleEndianBMS) HandleHoldingRegisters(req *sv.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		b.writes++
		return nil, sv.ErrIllegalFunction
	}
	out := make([]uint16, req.Quantity)
	for i := range out {
		mv := uint16(3300 + 3*i)
		out[i] = mv<<8 | mv>>8
	}
	return out, nil
}

// freeAddr is a loopback host:port nothing listens on at the moment.
func freeAddr(t *testing.T) string { return mosquittotest.FreeAddr(t) }

// serveModbus serves h over Modbus TCP on a free loopback address for the
// rest of the test and returns the address.
func serveModbus(t *testing.T, h sv.RequestHandler) string {
	t.Helper()
	addr := freeAddr(t)
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, Timeout: 10 * time.Second, MaxClients: 2,
		Logger: log.New(io.Discard, "", 0)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return addr
}

func TestModbusProbeFindsTheByteOrder(t *testing.T) {
	bms := &littleEndianBMS{}
	addr := serveModbus(t, bms)
	r := cellwarden(t, nil, "modbus", "probe", "--address", addr, "--start", "10240", "--count", "12", "--metric", "cell_voltage_volts")
	if r.code != 0 {
		t.Fatalf("probe: exit %d: %s", r.code, r.stderr)
	}
	first := regexp.MustCompile(`(?m)^PLAUSIBLE.*\n(.*)$`).FindStringSubmatch(r.stdout)
	if len(first) < 2 || !regexp.MustCompile(`^100%\s+type: uint16, byte_order: little, scale: 0.001\s+3.3 3.303 3.306`).MatchString(first[1]) {
		t.Errorf("best decoding is not little-endian millivolts:\n%s", r.stdout)
	}
	if bms.writes != 0 {
		t.Errorf("the probe sent %d write requests", bms.writes)
	}
}
