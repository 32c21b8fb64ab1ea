package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority and two certificates it
// signed, as PEM files: one for a server on 127.0.0.1 and localhost, one
// for a client (mutual TLS). They are valid for an hour.
type PKI struct {
	// CA is the authority's certificate file; Pool trusts it.
	CA   string
	Pool *x509.CertPool
	// ServerCert and ServerKey are the server's certificate and key files.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the client's certificate and key files.
	ClientCert, ClientKey string
}

// WritePKI writes ca.pem, server.pem, server-key.pem, client.pem and
// client-key.pem to dir.
func WritePKI(t testing.TB, dir string) *PKI {
	t.Helper()
	p := &PKI{CA: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool(),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cellwarden test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caCert, caKey := issue(t, ca, nil, nil, p.CA, "")
	p.Pool.AddCert(caCert)
	issue(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, caKey, p.ServerCert, p.ServerKey)
	issue(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "cellwarden"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, caKey, p.ClientCert, p.ClientKey)
	return p
}

// ServerTLS returns the TLS configuration of a server that presents the
// server certificate and requires a client certificate the CA signed.
func (p *PKI) ServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

// issue signs tmpl with parent's key (itself when parent is nil), writes
// the certificate to certFile and, unless keyFile is "", its key to
// keyFile, and returns them.
func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}}
	if keyFile != "" {
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		files[keyFile] = &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}
	}
	for name, b := range files {
		if err := os.WriteFile(name, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}
