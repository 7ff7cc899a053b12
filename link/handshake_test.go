package link

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestHandshakeDataFlows(t *testing.T) {
	secret, addr, results := startSecretExit(t)

	c, err := Client(context.Background(), dial(t, addr), testConfig(secret))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer c.Close()
	r := next(t, results)
	if r.err != nil {
		t.Fatalf("exit: %v", r.err)
	}
	s := r.conn
	defer s.Close()

	for _, conn := range []net.Conn{c, s} {
		tc, ok := conn.(*tls.Conn)
		if !ok {
			t.Fatalf("got %T, want *tls.Conn", conn)
		}
		if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Fatalf("TLS version %x", v)
		}
		// bond unwraps NetConn() until it finds the socket, to set
		// TCP options; every wrapper must let it through.
		var under net.Conn = tc
		for {
			nc, ok := under.(interface{ NetConn() net.Conn })
			if !ok {
				break
			}
			under = nc.NetConn()
		}
		if _, ok := under.(*net.TCPConn); !ok {
			t.Fatalf("unwrapping ends at %T, want *net.TCPConn", under)
		}
	}

	up := make([]byte, 1<<20)
	down := make([]byte, 1<<20+17)
	rand.Read(up)
	rand.Read(down)

	// The exit hashes everything up to the client's half-close, then
	// answers and closes; the client does the mirror image.
	type got struct {
		sum [32]byte
		err error
	}
	exitGot := make(chan got, 1)
	go func() {
		h := sha256.New()
		_, err := io.Copy(h, s)
		if err == nil {
			_, err = s.Write(down)
		}
		s.Close()
		var g got
		h.Sum(g.sum[:0])
		g.err = err
		exitGot <- g
	}()
	c.SetDeadline(time.Now().Add(safety))
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		t.Fatal(err)
	}
	eg := <-exitGot
	if eg.err != nil {
		t.Fatal(eg.err)
	}
	if eg.sum != sha256.Sum256(up) {
		t.Fatal("client→exit bytes corrupted")
	}
	if !bytes.Equal(h.Sum(nil), sha256Slice(down)) {
		t.Fatal("exit→client bytes corrupted")
	}
}

func sha256Slice(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestWrongSecretFailsBothSides(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "hold"}[hold], func(t *testing.T) {
			scfg := testConfig(newSecret(t))
			scfg.HoldOnFailure = hold
			// Long enough for a TLS handshake under -race on a busy
			// machine, shorter than the client's so the exit's close,
			// not the client's timeout, ends the client's wait.
			scfg.HandshakeTimeout = 1500 * time.Millisecond
			srv, err := NewServer(scfg)
			if err != nil {
				t.Fatal(err)
			}
			addr, results := startExit(t, srv)
			ccfg := testConfig(newSecret(t))
			ccfg.HandshakeTimeout = safety
			c, err := Client(context.Background(), dial(t, addr), ccfg)
			if !errors.Is(err, ErrAuthFailed) || c != nil {
				t.Fatalf("client: %v, want ErrAuthFailed", err)
			}
			// The exit closed, the client did not time out.
			if isTimeout(err) {
				t.Fatalf("client timed out instead of seeing the exit close: %v", err)
			}
			if r := next(t, results); !errors.Is(r.err, ErrAuthFailed) {
				t.Fatalf("exit: %v, want ErrAuthFailed", r.err)
			}
		})
	}
}

// TestExitSilentToWrongSecret reads the raw TCP stream after sending an
// AUTH: with a wrong secret nothing at all (no application data, no
// ticket, no close_notify) may arrive before the close; with the right
// one the exit's AUTH does, which shows the probe can see bytes.
func TestExitSilentToWrongSecret(t *testing.T) {
	secret, addr, results := startSecretExit(t)
	for _, tc := range []struct {
		name  string
		key   []byte
		role  byte
		bytes bool
	}{
		{"right secret", mustKey(t, secret), roleClient, true},
		{"wrong secret", mustKey(t, newSecret(t)), roleClient, false},
		{"right secret, exit role", mustKey(t, secret), roleServer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := dial(t, addr)
			conn, ekm := manualClient(t, raw)
			m := newAuth(tc.key, tc.role, ekm)
			if _, err := conn.Write(m.marshal()); err != nil {
				t.Fatal(err)
			}
			r := next(t, results)
			if tc.bytes {
				if r.err != nil {
					t.Fatalf("exit: %v", r.err)
				}
				r.conn.Close()
			} else if !errors.Is(r.err, ErrAuthFailed) {
				t.Fatalf("exit: %v, want ErrAuthFailed", r.err)
			}
			n := drainRaw(t, raw)
			if got := n > 0; got != tc.bytes {
				t.Fatalf("exit sent %d bytes after the handshake", n)
			}
		})
	}
}

// TestManInTheMiddle puts a relay that terminates TLS on both sides, with
// its own certificate, between client and exit. It forwards every byte
// faithfully but cannot make the proofs match.
func TestManInTheMiddle(t *testing.T) {
	secret, exitAddr, results := startSecretExit(t)

	cert, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fromExit := make(chan int64, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		craw, err := ln.Accept()
		if err != nil {
			fromExit <- -1
			return
		}
		defer craw.Close()
		front := tls.Server(craw, &tls.Config{Certificates: []tls.Certificate{*cert}})
		if front.Handshake() != nil {
			fromExit <- -1
			return
		}
		eraw, err := net.Dial("tcp", exitAddr)
		if err != nil {
			fromExit <- -1
			return
		}
		defer eraw.Close()
		back := tls.Client(eraw, &tls.Config{InsecureSkipVerify: true})
		if back.Handshake() != nil {
			fromExit <- -1
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(back, front)
		}()
		n, _ := io.Copy(front, back)
		fromExit <- n
		craw.Close()
		eraw.Close()
	}()

	_, err = Client(context.Background(), dial(t, ln.Addr().String()), testConfig(secret))
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("client through MITM: %v, want ErrAuthFailed", err)
	}
	if r := next(t, results); !errors.Is(r.err, ErrAuthFailed) {
		t.Fatalf("exit behind MITM: %v, want ErrAuthFailed", r.err)
	}
	if n := <-fromExit; n != 0 {
		t.Fatalf("exit sent the relay %d application bytes", n)
	}
}

// TestReplayRejected captures a valid AUTH from one session and sends it
// on a second TLS session.
func TestReplayRejected(t *testing.T) {
	secret, addr, results := startSecretExit(t)
	key := mustKey(t, secret)

	raw1 := dial(t, addr)
	c1, ekm1 := manualClient(t, raw1)
	msg := newAuth(key, roleClient, ekm1)
	captured := msg.marshal()
	if _, err := c1.Write(captured); err != nil {
		t.Fatal(err)
	}
	r := next(t, results)
	if r.err != nil {
		t.Fatalf("first session, genuine AUTH: %v", r.err)
	}
	r.conn.Close()

	raw2 := dial(t, addr)
	c2, ekm2 := manualClient(t, raw2)
	if bytes.Equal(ekm1, ekm2) {
		t.Fatal("two sessions exported the same keying material")
	}
	if _, err := c2.Write(captured); err != nil {
		t.Fatal(err)
	}
	if r := next(t, results); !errors.Is(r.err, ErrAuthFailed) {
		t.Fatalf("replayed AUTH: %v, want ErrAuthFailed", r.err)
	}
	if n := drainRaw(t, raw2); n != 0 {
		t.Fatalf("exit sent %d bytes to a replayer", n)
	}
}

// fakeExit does TLS like an exit and then answers the client's AUTH with
// whatever reply() makes of it.
func fakeExit(t *testing.T, reply func(clientAuth []byte) []byte) string {
	t.Helper()
	cert, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(safety))
		tc := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{*cert}})
		buf := make([]byte, AuthSize)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return
		}
		tc.Write(reply(buf))
		tc.Close()
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestClientRejectsBadExitProof(t *testing.T) {
	secret := newSecret(t)
	for _, tc := range []struct {
		name  string
		reply func([]byte) []byte
		want  error
	}{
		{"reflected", func(b []byte) []byte { return b }, ErrAuthFailed},
		{"reflected as exit role", func(b []byte) []byte { b[1] = roleServer; return b }, ErrAuthFailed},
		{"zero mac", func([]byte) []byte { return append([]byte{Version, roleServer}, make([]byte, macSize)...) }, ErrAuthFailed},
		{"future version", func(b []byte) []byte { b[0] = Version + 1; return b }, ErrVersion},
		{"short", func(b []byte) []byte { return b[:10] }, ErrAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeExit(t, tc.reply)
			c, err := Client(context.Background(), dial(t, addr), testConfig(secret))
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrAuthFailed) || c != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestProbersGetNothing(t *testing.T) {
	cfg := testConfig(newSecret(t))
	cfg.HoldOnFailure = true
	// The TLS 1.2 client waits for an answer that never comes until the
	// exit's deadline closes the conn.
	cfg.HandshakeTimeout = 500 * time.Millisecond
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, results := startExit(t, srv)
	junk := make([]byte, 4096)
	rand.Read(junk)
	// Looks like a TLS handshake record but is not a ClientHello: makes
	// crypto/tls answer with an alert, which the exit must swallow.
	fakeHello := append([]byte{22, 3, 1, 0, 64, 1, 0, 0, 60}, junk[:60]...)
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"random bytes", junk},
		{"http", []byte("GET / HTTP/1.1\r\nHost: exit\r\nUser-Agent: probe\r\n\r\n")},
		{"broken hello", fakeHello},
		{"nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := dial(t, addr)
			if len(tc.send) > 0 {
				if _, err := raw.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			// Half-close so the held conn ends at our EOF, not at the
			// deadline.
			raw.(*net.TCPConn).CloseWrite()
			if n := drainRaw(t, raw); n != 0 {
				t.Fatalf("prober got %d bytes", n)
			}
			if r := next(t, results); !errors.Is(r.err, ErrHandshake) {
				t.Fatalf("exit: %v, want ErrHandshake", r.err)
			}
		})
	}
	t.Run("tls1.2 client", func(t *testing.T) {
		raw := dial(t, addr)
		raw.SetDeadline(time.Now().Add(safety))
		counter := &countingConn{Conn: raw}
		tc := tls.Client(counter, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err == nil {
			t.Fatal("TLS 1.2 handshake succeeded")
		}
		raw.(*net.TCPConn).CloseWrite()
		if n := counter.n + drainRaw(t, raw); n != 0 {
			t.Fatalf("TLS 1.2 client got %d bytes", n)
		}
		if r := next(t, results); !errors.Is(r.err, ErrHandshake) {
			t.Fatalf("exit: %v, want ErrHandshake", r.err)
		}
	})
}

type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// TestSlowlorisClosedAtDeadline: a peer that sends one byte and stalls is
// closed when HandshakeTimeout expires (the close, not a sleep, is what
// the test waits for).
func TestSlowlorisClosedAtDeadline(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "hold"}[hold], func(t *testing.T) {
			cfg := testConfig(newSecret(t))
			cfg.HandshakeTimeout = 300 * time.Millisecond
			cfg.HoldOnFailure = hold
			srv, err := NewServer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			addr, results := startExit(t, srv)
			// Before the dial: the exit's deadline starts at its accept.
			start := time.Now()
			raw := dial(t, addr)
			if _, err := raw.Write([]byte{22}); err != nil {
				t.Fatal(err)
			}
			if n := drainRaw(t, raw); n != 0 {
				t.Fatalf("got %d bytes", n)
			}
			if d := time.Since(start); d < cfg.HandshakeTimeout {
				t.Fatalf("closed after %v, before the %v deadline", d, cfg.HandshakeTimeout)
			}
			r := next(t, results)
			if !errors.Is(r.err, ErrHandshake) || !isTimeout(r.err) {
				t.Fatalf("exit: %v, want a TLS handshake timeout", r.err)
			}
		})
	}
}

func TestContextCancelAborts(t *testing.T) {
	cfg := testConfig(newSecret(t))
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw := dial(t, ln.Addr().String())
	sraw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := srv.Handshake(ctx, sraw)
		done <- err
	}()
	// The prober's first byte arriving proves the handshake is reading.
	raw.Write([]byte{22})
	cancel()
	if n := drainRaw(t, raw); n != 0 {
		t.Fatalf("got %d bytes", n)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// An already cancelled context fails at once and closes raw.
	c2 := dial(t, ln.Addr().String())
	if _, err := Client(ctx, c2, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("client with cancelled ctx: %v", err)
	}
}

func TestSecretRotation(t *testing.T) {
	oldS, newS := newSecret(t), newSecret(t)
	cfg := testConfig(newS)
	cfg.AcceptSecrets = []Secret{oldS}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, results := startExit(t, srv)
	for _, tc := range []struct {
		name   string
		secret Secret
		ok     bool
	}{
		{"new", newS, true},
		{"old", oldS, true},
		{"other", newSecret(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Client(context.Background(), dial(t, addr), testConfig(tc.secret))
			r := next(t, results)
			if tc.ok {
				if err != nil || r.err != nil {
					t.Fatalf("client %v, exit %v", err, r.err)
				}
				c.Close()
				r.conn.Close()
				return
			}
			if !errors.Is(err, ErrAuthFailed) || !errors.Is(r.err, ErrAuthFailed) {
				t.Fatalf("client %v, exit %v; want ErrAuthFailed", err, r.err)
			}
		})
	}
}

func TestRealCertificate(t *testing.T) {
	pki := newPKI(t)
	other := newPKI(t)
	secret := newSecret(t)

	realCfg := testConfig(secret)
	realCfg.Certificate = pki.leaf
	realSrv, err := NewServer(realCfg)
	if err != nil {
		t.Fatal(err)
	}
	realAddr, realResults := startExit(t, realSrv)
	selfSrv, err := NewServer(testConfig(secret))
	if err != nil {
		t.Fatal(err)
	}
	selfAddr, selfResults := startExit(t, selfSrv)

	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	for _, tc := range []struct {
		name       string
		self       bool
		roots      *x509.CertPool
		serverName string
		wantAs     any // nil: success
	}{
		{"CA and name", false, pki.pool, "exit.braid.test", nil},
		{"CA and dialed IP", false, pki.pool, "", nil},
		{"no verification", false, nil, "", nil},
		{"wrong CA", false, other.pool, "exit.braid.test", &unknownCA},
		{"wrong name", false, pki.pool, "other.braid.test", &badHost},
		{"self-signed exit", true, pki.pool, "exit.braid.test", &verifyErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := realAddr, realResults
			if tc.self {
				addr, results = selfAddr, selfResults
			}
			cfg := testConfig(secret)
			cfg.RootCAs, cfg.ServerName = tc.roots, tc.serverName
			c, err := Client(context.Background(), dial(t, addr), cfg)
			r := next(t, results)
			if tc.wantAs == nil {
				if err != nil || r.err != nil {
					t.Fatalf("client %v, exit %v", err, r.err)
				}
				c.Close()
				r.conn.Close()
				return
			}
			if !errors.Is(err, ErrHandshake) || !errors.As(err, tc.wantAs) {
				t.Fatalf("client: %v, want ErrHandshake with %T", err, tc.wantAs)
			}
			if !errors.Is(r.err, ErrHandshake) {
				t.Fatalf("exit: %v, want ErrHandshake", r.err)
			}
		})
	}
}

func TestInvalidConfigClosesRaw(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	if _, err := Client(context.Background(), a, DefaultConfig()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v", err)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("raw still open: %v", err)
	}
	if _, err := NewServer(DefaultConfig()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewServer: %v", err)
	}
}
