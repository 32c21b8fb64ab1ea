// Package modbustest serves Modbus TCP on loopback for tests: a register
// bank (modbus.Bank) or any other request handler of the simonvetter
// server, on a free port, until the test ends.
package modbustest

import (
	"io"
	"log"
	"net"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"
)

// Serve serves h over Modbus TCP on a free loopback port until the test
// ends and returns the address (host:port). The server takes up to 8
// clients and drops a connection idle for a minute.
func Serve(t testing.TB, h sv.RequestHandler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 8,
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
