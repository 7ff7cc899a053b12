package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// safety bounds every blocking read in tests so a broken build fails
// instead of hanging; it is never what a test waits for.
const safety = 10 * time.Second

func newSecret(t testing.TB) Secret {
	t.Helper()
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig(secret Secret) Config {
	c := DefaultConfig()
	c.Secret = secret
	c.HandshakeTimeout = 5 * time.Second
	c.HoldOnFailure = false
	return c
}

type exitResult struct {
	conn net.Conn
	err  error
}

// startExit listens on loopback and runs srv.Handshake on every accepted
// conn, reporting each outcome. Cleanup closes the listener, waits for the
// handshakes and closes authenticated conns nobody took.
func startExit(t *testing.T, srv *Server) (string, <-chan exitResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan exitResult, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := srv.Handshake(ctx, raw)
				results <- exitResult{c, err}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
		close(results)
		for r := range results {
			if r.conn != nil {
				r.conn.Close()
			}
		}
	})
	return ln.Addr().String(), results
}

func next(t *testing.T, results <-chan exitResult) exitResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(safety):
		t.Fatal("exit handshake did not finish")
		return exitResult{}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// drainRaw reads raw until the peer closes it and returns how many bytes
// arrived. A read timeout (the peer never closed) fails the test.
func drainRaw(t *testing.T, raw net.Conn) int64 {
	t.Helper()
	raw.SetReadDeadline(time.Now().Add(safety))
	n, err := io.Copy(io.Discard, raw)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading until close: %v (after %d bytes)", err, n)
	}
	return n
}

// manualClient does the client's TLS handshake by hand and returns the
// TLS conn and the session's EKM, so tests can send any AUTH they like.
func manualClient(t *testing.T, raw net.Conn) (*tls.Conn, []byte) {
	t.Helper()
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	raw.SetDeadline(time.Now().Add(safety))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	ekm, err := exportEKM(tc)
	if err != nil {
		t.Fatal(err)
	}
	return tc, ekm
}

func mustKey(t testing.TB, s Secret) []byte {
	t.Helper()
	k, err := deriveKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testPKI makes a CA and a leaf for exit.braid.test and 127.0.0.1.
type testPKI struct {
	pool *x509.CertPool
	leaf *tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "braid test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "exit.braid.test"},
		DNSNames:     []string{"exit.braid.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{pool: pool, leaf: &tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// startSecretExit starts an exit with a fresh secret and returns the
// secret, its address and its handshake results.
func startSecretExit(t *testing.T) (Secret, string, <-chan exitResult) {
	t.Helper()
	secret := newSecret(t)
	srv, err := NewServer(testConfig(secret))
	if err != nil {
		t.Fatal(err)
	}
	addr, results := startExit(t, srv)
	return secret, addr, results
}
