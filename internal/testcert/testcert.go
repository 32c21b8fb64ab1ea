// Package testcert makes a self-signed certificate for 127.0.0.1, for
// tests that serve or scrape over TLS on loopback.
package testcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Write writes cert.pem (a CA certificate valid for 127.0.0.1 for an hour)
// and key.pem to dir and returns a pool that trusts the certificate.
func Write(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cellwarden test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	cert, _ := issue(t, tmpl, nil, nil, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
