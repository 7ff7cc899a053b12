//go:build linux

package e2e

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braid-proxy/braid/link"
)

// probeDeadline is the exit's --handshake-timeout in the probe tests.
const probeDeadline = 2 * time.Second

// probeRig is an exit that may dial loopback, with a target nobody should
// ever reach through it.
type probeRig struct {
	exit     *proc
	exitAddr string
	target   *target
}

func startProbeRig(t *testing.T) *probeRig {
	t.Helper()
	tg := startTarget(t, echo)
	ex, addr := startExit(t, append([]string{"--handshake-timeout", probeDeadline.String()}, allowLoopback...)...)
	return &probeRig{exit: ex, exitAddr: addr, target: tg}
}

// checkNothingProxied: the target saw want connections, and the exit
// brought up no bond link for anyone but a real client (wantLinks).
func (p *probeRig) checkNothingProxied(t *testing.T, wantTarget int64, wantLinks int) {
	t.Helper()
	p.exit.requireAlive()
	if n := p.target.accepted.Load(); n != wantTarget {
		t.Errorf("target saw %d connections, want %d", n, wantTarget)
	}
	if n := p.exit.countLog(func(l logLine) bool { return l.Msg == "bond: link up" }); n != wantLinks {
		t.Errorf("exit brought up %d bond links, want %d", n, wantLinks)
	}
}

// silence is what a probe got back from the exit.
type silence struct {
	bytes  int           // bytes received
	lasted time.Duration // from before the dial until the exit closed
	closed bool          // the exit closed (EOF or reset), not our timeout
	alert  string        // a TLS alert the exit sent, if any
	err    error
}

// drain reads c until it ends or deadline+5 s pass since start.
func drain(c net.Conn, start time.Time) silence {
	c.SetReadDeadline(start.Add(probeDeadline + 5*time.Second))
	n, err := io.Copy(io.Discard, c)
	s := silence{bytes: int(n), lasted: time.Since(start), err: err}
	var ne net.Error
	s.closed = err == nil || errors.Is(err, io.ErrUnexpectedEOF) || !(errors.As(err, &ne) && ne.Timeout())
	return s
}

// drainTLS is drain for a TLS conn: bytes counts application data only.
// A TLS alert from the exit (it says so when a record fails to decrypt)
// is not application data; after one, the socket is drained raw to see
// when the exit closes it.
func drainTLS(tc *tls.Conn, raw net.Conn, start time.Time) silence {
	s := drain(tc, start)
	var oe *net.OpError
	if s.bytes == 0 && errors.As(s.err, &oe) && oe.Op == "remote error" {
		s = drain(raw, start)
		s.alert = oe.Err.Error()
	}
	return s
}

// check: no byte, closed by the exit, and only at the handshake
// deadline (HoldOnFailure: the timing gives nothing away either).
func (s silence) check(what string) error {
	switch {
	case s.bytes > 0:
		return fmt.Errorf("%s: %d bytes back", what, s.bytes)
	case !s.closed:
		return fmt.Errorf("%s: not closed by the exit after %v (%v)", what, s.lasted, s.err)
	case s.lasted < probeDeadline-100*time.Millisecond:
		return fmt.Errorf("%s: closed after %v, before the %v deadline", what, s.lasted, probeDeadline)
	case s.lasted > probeDeadline+3*time.Second:
		return fmt.Errorf("%s: closed only after %v", what, s.lasted)
	}
	return nil
}

// TestProbeRandomBytes: 1,000 random byte strings of 1..2,048 bytes get
// not one byte back; each connection is held to the handshake deadline,
// then closed; nothing reaches the target.
func TestProbeRandomBytes(t *testing.T) {
	p := startProbeRig(t)
	const n = 1000
	var mu sync.Mutex
	var fails []error
	var maxLasted time.Duration
	limitConcurrency(n, 500, func(i int) {
		r := mrand.New(mrand.NewPCG(uint64(i), 11))
		b := make([]byte, 1+r.IntN(2048))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		start := time.Now()
		c, err := net.Dial("tcp", p.exitAddr)
		if err != nil {
			mu.Lock()
			fails = append(fails, err)
			mu.Unlock()
			return
		}
		defer c.Close()
		c.Write(b)
		s := drain(c, start)
		mu.Lock()
		defer mu.Unlock()
		maxLasted = max(maxLasted, s.lasted)
		if err := s.check(fmt.Sprintf("probe %d (%d bytes, first %#x)", i, len(b), b[0])); err != nil {
			fails = append(fails, err)
		}
	})
	t.Logf("%d random probes: %d failures, longest held %v", n, len(fails), maxLasted.Round(time.Millisecond))
	for _, err := range fails[:min(len(fails), 10)] {
		t.Error(err)
	}
	p.checkNothingProxied(t, 0, 0)
}

// countingConn counts the bytes read from it.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// tlsToExit completes a TLS 1.3 handshake with the exit, as a link client
// would, and returns the conn and how many bytes the exit's handshake
// flight was.
func tlsToExit(t *testing.T, addr string) (*tls.Conn, net.Conn, int64) {
	t.Helper()
	tc, raw, n, err := dialTLS(addr)
	if err != nil {
		t.Fatal(err)
	}
	return tc, raw, n
}

func dialTLS(addr string) (*tls.Conn, net.Conn, int64, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, 0, err
	}
	cc := &countingConn{Conn: raw}
	tc := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	ctx, cancel := context.WithTimeout(context.Background(), probeDeadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, 0, fmt.Errorf("TLS handshake with the exit: %w", err)
	}
	return tc, raw, cc.read.Load(), nil
}

// TestProbeTLSThenGarbage: a prober that speaks TLS 1.3 correctly and then
// sends garbage, inside TLS or raw on the socket, gets no application
// byte, only the deadline's close; nothing reaches the target.
func TestProbeTLSThenGarbage(t *testing.T) {
	p := startProbeRig(t)
	garbage := make([]byte, 2048)
	rand.Read(garbage)
	cases := []struct {
		name  string
		write func(tc *tls.Conn, raw net.Conn) error
	}{
		{"garbage as TLS application data", func(tc *tls.Conn, _ net.Conn) error {
			_, err := tc.Write(garbage)
			return err
		}},
		{"an AUTH-sized record of garbage", func(tc *tls.Conn, _ net.Conn) error {
			_, err := tc.Write(garbage[:link.AuthSize])
			return err
		}},
		{"garbage under TLS, on the socket", func(_ *tls.Conn, raw net.Conn) error {
			_, err := raw.Write(garbage)
			return err
		}},
		{"nothing after the handshake", func(*tls.Conn, net.Conn) error { return nil }},
	}
	// What any TLS client learns: the exit's certificate.
	tc, raw, flight := tlsToExit(t, p.exitAddr)
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		t.Logf("a TLS prober sees a %d-byte handshake flight and a certificate for %q, issued by %q",
			flight, pc[0].Subject.String(), pc[0].Issuer.String())
	}
	raw.Close()

	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			tc, raw, _, err := dialTLS(p.exitAddr)
			if err != nil {
				errs[i] = err
				return
			}
			defer raw.Close()
			if err := c.write(tc, raw); err != nil {
				errs[i] = fmt.Errorf("%s: write: %w", c.name, err)
				return
			}
			s := drainTLS(tc, raw, start)
			if s.alert != "" {
				t.Logf("%s: the exit sent a TLS alert (%s), no application data", c.name, s.alert)
			}
			errs[i] = s.check(c.name)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	p.checkNothingProxied(t, 0, 0)
}

// authFor computes the link AUTH message (link/doc.go) for secret, role
// (1 client, 2 exit) and the TLS session of tc: the test's own statement
// of the protocol, so it can forge replays and reflections.
func authFor(t *testing.T, secret []byte, role byte, tc *tls.Conn) []byte {
	t.Helper()
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial("EXPORTER-braid-link-auth-v1", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hkdf.Key(sha256.New, secret, []byte("braid link v1"), "braid link v1 auth key", sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("braid link v1 auth\x00"))
	h.Write([]byte{link.Version, role})
	h.Write(ekm)
	return append([]byte{link.Version, role}, h.Sum(nil)...)
}

func loadSecret(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := link.ParseSecret(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestProbeReplayedAuth: a valid AUTH proof is accepted on its own TLS
// session (the control: the exit answers with its own valid proof), but
// the same proof replayed on another session, the exit's own proof
// reflected back, a proof under the wrong secret and a proof with a
// future version all get silence and the deadline's close.
func TestProbeReplayedAuth(t *testing.T) {
	p := startProbeRig(t)
	secret := loadSecret(t)

	// Control: a correct proof on its own session.
	tcA, rawA, _ := tlsToExit(t, p.exitAddr)
	proofA := authFor(t, secret, 1, tcA)
	if _, err := tcA.Write(proofA); err != nil {
		t.Fatal(err)
	}
	tcA.SetReadDeadline(time.Now().Add(probeDeadline))
	var answer [link.AuthSize]byte
	if _, err := io.ReadFull(tcA, answer[:]); err != nil {
		t.Fatalf("control: the exit did not answer a valid proof: %v", err)
	}
	if want := authFor(t, secret, 2, tcA); !hmac.Equal(answer[:], want) {
		t.Fatalf("control: the exit's proof %x, want %x", answer, want)
	}
	rawA.Close()

	wrong := make([]byte, link.SecretSize)
	rand.Read(wrong)
	cases := []struct {
		name  string
		proof func(tc *tls.Conn) []byte
	}{
		{"client proof replayed from another session", func(*tls.Conn) []byte { return proofA }},
		{"the exit's proof reflected back", func(tc *tls.Conn) []byte { return authFor(t, secret, 2, tc) }},
		{"proof under the wrong secret", func(tc *tls.Conn) []byte { return authFor(t, wrong, 1, tc) }},
		{"proof with an unknown version", func(tc *tls.Conn) []byte {
			b := authFor(t, secret, 1, tc)
			b[0] = link.Version + 1
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			tc, raw, _ := tlsToExit(t, p.exitAddr)
			defer raw.Close()
			if _, err := tc.Write(c.proof(tc)); err != nil {
				t.Fatal(err)
			}
			if err := drainTLS(tc, raw, start).check(c.name); err != nil {
				t.Fatal(err)
			}
		})
	}
	p.checkNothingProxied(t, 0, 0)
}

// TestProbeReplayedLinkCapture: an observer on the path records a real
// client's whole link connection (TLS handshake, AUTH, a CONNECT to the
// target and its data) and replays those bytes to the exit on a new
// connection. The exit sends at most its TLS handshake flight and an
// alert (the recorded client Finished fails against a fresh server
// random), never
// application data, and the target sees no second connection.
func TestProbeReplayedLinkCapture(t *testing.T) {
	p := startProbeRig(t)
	rl := startRelay(t, p.exitAddr, true)
	cl, socks := startClient(t, p.exitAddr, "--link", "to="+rl.Addr()+",name=r0")
	waitLinks(t, cl, 1)
	c := mustConnect(t, socks, localDest(p.target.Addr()))
	if err := echoRoundTrip(c, 5, 64<<10); err != nil {
		t.Fatal(err)
	}
	c.Close()
	capture := rl.capture(0)
	if len(capture) < 64<<10 {
		t.Fatalf("captured only %d bytes", len(capture))
	}
	_, raw, flight := tlsToExit(t, p.exitAddr)
	raw.Close()

	start := time.Now()
	rc, err := net.Dial("tcp", p.exitAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	go rc.Write(capture) // ends when the exit closes
	s := drain(rc, start)
	t.Logf("replayed %d captured bytes: got %d back (handshake flight %d), closed=%v after %v",
		len(capture), s.bytes, flight, s.closed, s.lasted.Round(time.Millisecond))
	// The flight, plus at most one encrypted alert when the recorded
	// Finished fails (ECDSA signatures also vary by a few bytes).
	if int64(s.bytes) > flight+64 || !s.closed {
		t.Fatalf("replay got %d bytes back (flight is %d), closed=%v", s.bytes, flight, s.closed)
	}
	cl.requireAlive()
	p.checkNothingProxied(t, 1, 1)
}
