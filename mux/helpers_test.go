package mux

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var discardLogger = slog.New(slog.DiscardHandler)

// testConfig is DefaultConfig, quiet.
func testConfig() Config {
	c := DefaultConfig()
	c.Logger = discardLogger
	return c
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		a.Close()
		t.Fatal(r.err)
	}
	return a, r.c
}

// startTarget runs a loopback TCP server calling handle for each
// connection (handle need not close it). Cleanup closes the listener and
// waits for the handlers; register it before the mux pair so the pair's
// cleanup (which closes the exit's target conns) runs first.
func startTarget(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

type pair struct {
	client    *Client
	clientRaw net.Conn // the transport under the client session
	serveErr  chan error
}

// newPair connects a Client and Serve over loopback TCP. ctx may be nil.
func newPair(t testing.TB, ccfg, ecfg Config, dial DialFunc, hooks serveHooks) *pair {
	t.Helper()
	a, b := tcpPair(t)
	p := &pair{clientRaw: a, serveErr: make(chan error, 1)}
	go func() { p.serveErr <- serve(context.Background(), b, ecfg, dial, hooks) }()
	c, err := NewClient(a, ccfg)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	p.client = c
	t.Cleanup(func() {
		c.Close()
		<-p.serveErr
	})
	return p
}

var netDial DialFunc = (&net.Dialer{}).DialContext

// payload is n deterministic pseudo-random bytes for seed.
func payload(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// payloadSum is the sha256 of payload(seed, n).
func payloadSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, payload(seed, n)); err != nil {
		panic(err)
	}
	return sum(h)
}

func sum(h hash.Hash) [32]byte {
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// readSum reads r to EOF and returns the byte count and sha256.
func readSum(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, sum(h), err
}

// deniedError looks like egress's policy refusal.
type deniedError struct{}

func (deniedError) Error() string    { return "destination denied by policy" }
func (deniedError) NotAllowed() bool { return true }

// asConnectError fails the test unless err is a *ConnectError.
func asConnectError(t testing.TB, err error) *ConnectError {
	t.Helper()
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConnectError", err, err)
	}
	return ce
}

// newRecordingLogger logs text lines without timestamps to w.
func newRecordingLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}
