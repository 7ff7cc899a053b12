package socks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestReplyCodeMapping(t *testing.T) {
	sys := func(e syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}
	}
	cases := []struct {
		name string
		err  error
		want byte
	}{
		{"ReplyCode wins", fmt.Errorf("mux: %w", codeError(2)), 2},
		{"ReplyCode over syscall", fmt.Errorf("%w / %w", codeError(3), syscall.ECONNREFUSED), 3},
		{"ReplyCode 0 is not success", codeError(0), 1},
		{"ReplyCode unassigned", codeError(9), 1},
		{"refused", sys(syscall.ECONNREFUSED), 5},
		{"net unreachable", sys(syscall.ENETUNREACH), 3},
		{"host unreachable", sys(syscall.EHOSTUNREACH), 4},
		{"timed out", sys(syscall.ETIMEDOUT), 6},
		{"context deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), 6},
		{"i/o timeout", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, 6},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, 4},
		{"dns timeout", &net.DNSError{Err: "timeout", Name: "x.test", IsTimeout: true}, 6},
		{"cancelled", context.Canceled, 1},
		{"other", errors.New("boom"), 1},
		{"reset", sys(syscall.ECONNRESET), 1},
	}
	for _, tc := range cases {
		if got := replyCode(tc.err); got != tc.want {
			t.Errorf("%s: replyCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRealRefusedDialGivesReply5(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there now: the kernel refuses
	d := &dialRecorder{routes: map[string]string{"gone.test:80": closed}}
	s, proxy := startServer(t, testConfig(), d.dial)
	c := connect(t, proxy, "gone.test", 80, 5)
	expectClosed(t, c)
	if st := s.Stats(); st.Replies[5] != 1 || st.Replies[0] != 0 {
		t.Fatalf("replies %v, want one 5", st.Replies)
	}
}

func TestUnsupportedCommandsAndAddressTypes(t *testing.T) {
	d := &dialRecorder{}
	var done <-chan struct{}
	s, proxy := startServerWith(t, testConfig(), d.dial, func(s *Server) { done = connDoneChan(s) })
	for _, cmd := range []byte{2, 3, 9} { // BIND, UDP ASSOCIATE, unknown
		c := socksDial(t, proxy)
		c.greet(0)
		code, _, err := c.request(cmd, "127.0.0.1", 80)
		if err != nil || code != 7 {
			t.Fatalf("command %d: reply %d, %v; want 7", cmd, code, err)
		}
		expectClosed(t, c)
	}
	c := socksDial(t, proxy)
	c.greet(0)
	c.Write([]byte{5, 1, 0, 7, 1, 2, 3, 4, 0, 80}) // address type 7
	if code, _, err := c.readReply(); err != nil || code != 8 {
		t.Fatalf("bad address type: reply %d, %v; want 8", code, err)
	}
	expectClosed(t, c)
	waitDone(t, done, 4)

	if got := d.requested(); len(got) != 0 {
		t.Fatalf("dialed %q", got)
	}
	st := s.Stats()
	if st.Replies[7] != 3 || st.Replies[8] != 1 {
		t.Fatalf("replies %v, want three 7 and one 8", st.Replies)
	}
	// BIND and ASSOCIATE are well-formed requests; the unknown command
	// and address type are handshake failures.
	if st.HandshakeFailures != 2 || st.Total != 4 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAuth(t *testing.T) {
	body := randomBytes(100<<10, 9)
	port := httpServer(t, body)
	cfg := testConfig()
	cfg.Credentials = map[string]string{"alice": "s3cret:with colon", "bob": "hunter2"}
	d := &dialRecorder{routes: map[string]string{exitName + ":" + port: "127.0.0.1:" + port}}
	var done <-chan struct{}
	s, proxy := startServerWith(t, cfg, d.dial, func(s *Server) { done = connDoneChan(s) })
	url := "http://" + exitName + ":" + port + "/"

	t.Run("curl accepted", func(t *testing.T) {
		res := runCurl(t, "--socks5-hostname", proxy, "--proxy-user", "alice:s3cret:with colon", url)
		if res.exit != 0 || sum(res.stdout) != sum(body) {
			t.Fatalf("curl exit %d, %d bytes: %s", res.exit, len(res.stdout), res.stderr)
		}
	})
	t.Run("curl rejected", func(t *testing.T) {
		res := runCurl(t, "--socks5-hostname", proxy, "--proxy-user", "alice:wrong", url)
		want := "curl: (97) User was rejected by the SOCKS5 server (1 1)."
		if res.exit != 97 || !strings.Contains(string(res.stderr), want) {
			t.Fatalf("curl exit %d stderr %q, want 97 and %q", res.exit, res.stderr, want)
		}
	})
	t.Run("raw", func(t *testing.T) {
		c := socksDial(t, proxy)
		if m, err := c.greet(2); err != nil || m != 2 {
			t.Fatalf("method %d, %v; want 2", m, err)
		}
		if st, err := c.login("bob", "hunter2"); err != nil || st != 0 {
			t.Fatalf("login status %d, %v; want 0", st, err)
		}
		c.Close()

		for _, creds := range [][2]string{{"bob", "hunter3"}, {"mallory", "hunter2"}, {"bob", ""}, {"", ""}} {
			c := socksDial(t, proxy)
			c.greet(2)
			if st, err := c.login(creds[0], creds[1]); err != nil || st == 0 {
				t.Fatalf("login %q: status %d, %v; want failure", creds[0], st, err)
			}
			expectClosed(t, c)
		}
		// A client offering only "no authentication" gets 0xFF.
		c = socksDial(t, proxy)
		if m, err := c.greet(0); err != nil || m != 0xff {
			t.Fatalf("no-auth client: method %#x, %v; want 0xff", m, err)
		}
		expectClosed(t, c)
	})
	// 2 curl + 1 good raw + 4 bad logins + 1 no-auth
	waitDone(t, done, 8)
	st := s.Stats()
	if st.AuthFailures != 5 || st.HandshakeFailures != 7 {
		t.Fatalf("stats %+v: want 5 auth failures, 7 handshake failures", st)
	}
	if got := d.requested(); len(got) != 1 {
		t.Fatalf("dialer asked for %q, want only the accepted curl", got)
	}
}

func TestNoAuthServerRefusesPasswordOnlyClient(t *testing.T) {
	_, proxy := startServer(t, testConfig(), (&dialRecorder{}).dial)
	c := socksDial(t, proxy)
	if m, err := c.greet(2); err != nil || m != 0xff {
		t.Fatalf("method %#x, %v; want 0xff", m, err)
	}
	expectClosed(t, c)
}

func TestHandshakeTimeoutRealSocket(t *testing.T) {
	cfg := testConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	var done <-chan struct{}
	s, proxy := startServerWith(t, cfg, (&dialRecorder{}).dial, func(s *Server) { done = connDoneChan(s) })
	c := socksDial(t, proxy)
	start := time.Now()
	c.Write([]byte{5}) // half a greeting, then silence
	expectClosed(t, c)
	if el := time.Since(start); el < cfg.HandshakeTimeout {
		t.Fatalf("closed after %v, before the %v timeout", el, cfg.HandshakeTimeout)
	}
	waitDone(t, done, 1)
	if st := s.Stats(); st.HandshakeFailures != 1 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// pipeServer runs s on one end of a net.Pipe and returns the client end.
func pipeServer(t *testing.T, s *Server) *socksConn {
	cli, srv := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	s.accept(srv)
	return &socksConn{Conn: cli, r: bufio.NewReader(cli)}
}

func TestHandshakeTimeoutSynctest(t *testing.T) {
	const timeout = 3 * time.Second
	t.Run("silent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig()
			cfg.HandshakeTimeout = timeout
			s, _ := NewServer(cfg, (&dialRecorder{}).dial)
			defer s.Close()
			start := time.Now()
			c := pipeServer(t, s)
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read: %v, want EOF", err)
			}
			if el := time.Since(start); el != timeout {
				t.Fatalf("closed after %v, want exactly %v", el, timeout)
			}
		})
	})
	t.Run("trickle cannot extend it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig()
			cfg.HandshakeTimeout = timeout
			s, _ := NewServer(cfg, (&dialRecorder{}).dial)
			defer s.Close()
			start := time.Now()
			c := pipeServer(t, s)
			// Greeting bytes at 0s, 1s and 2s, each within the timeout of
			// the previous one; a per-read timeout would never fire.
			for i, b := range []byte{5, 1, 0} {
				if i > 0 {
					time.Sleep(time.Second)
				}
				go c.Write([]byte{b}) // fails once the server is gone
			}
			var m [2]byte
			if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
				t.Fatalf("method reply % x, %v", m, err)
			}
			time.Sleep(time.Second / 2)
			go c.Write([]byte{5}) // first request byte at 2.5s
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read: %v, want EOF", err)
			}
			if el := time.Since(start); el != timeout {
				t.Fatalf("closed after %v, want exactly %v", el, timeout)
			}
			synctest.Wait()
			if st := s.Stats(); st.HandshakeFailures != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	})
}

func TestDeadlineClearedAfterRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.HandshakeTimeout = time.Second
		upCli, upSrv := net.Pipe()
		defer upSrv.Close()
		s, _ := NewServer(cfg, func(ctx context.Context, addr string) (net.Conn, error) { return upCli, nil })
		defer s.Close()
		c := pipeServer(t, s)
		if m, err := c.greet(0); err != nil || m != 0 {
			t.Fatalf("greet %d, %v", m, err)
		}
		code, bnd, err := c.request(1, "x.test", 80)
		if err != nil || code != 0 || bnd != netip.MustParseAddrPort("0.0.0.0:0") {
			t.Fatalf("reply %d bnd %v, %v; want 0 and 0.0.0.0:0 for a pipe", code, bnd, err)
		}
		time.Sleep(time.Hour) // idle far past the handshake timeout

		go c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(upSrv, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("upstream got %q, %v", buf, err)
		}
		go upSrv.Write([]byte("pong"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("client got %q, %v", buf, err)
		}
		if st := s.Stats(); st.Active != 1 || st.Replies[0] != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// countingHandler counts slog records at Warn and above.
type countingHandler struct {
	mu    sync.Mutex
	warns int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.warns++
		h.mu.Unlock()
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestMaxConns(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 2
	logs := &countingHandler{}
	cfg.Logger = slog.New(logs)
	var done <-chan struct{}
	s, proxy := startServerWith(t, cfg, (&dialRecorder{}).dial, func(s *Server) { done = connDoneChan(s) })

	var held []*socksConn
	for range 2 {
		c := socksDial(t, proxy)
		if m, err := c.greet(0); err != nil || m != 0 { // answered: accepted and counted
			t.Fatalf("greet %d, %v", m, err)
		}
		held = append(held, c)
	}
	for range 3 {
		expectClosed(t, socksDial(t, proxy)) // over the cap: closed at once
	}
	st := s.Stats()
	if st.Active != 2 || st.Rejected != 3 || st.Total != 2 {
		t.Fatalf("stats %+v, want 2 active, 3 rejected", st)
	}
	logs.mu.Lock()
	warns := logs.warns
	logs.mu.Unlock()
	if warns != 1 {
		t.Fatalf("%d warnings for 3 rejections, want 1 per interval", warns)
	}

	held[0].Close()
	waitDone(t, done, 1)
	c := socksDial(t, proxy)
	if m, err := c.greet(0); err != nil || m != 0 {
		t.Fatalf("after a slot freed: greet %d, %v", m, err)
	}
}

func TestCloseTearsDownEverything(t *testing.T) {
	upstreamEnded := make(chan error, 1)
	d, wait := routeTo(t, func(c *net.TCPConn) {
		_, err := io.ReadAll(c) // ends when the proxy closes the upstream
		upstreamEnded <- err
	})
	s, err := NewServer(testConfig(), d.dial)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(l) }()
	relaying := connect(t, l.Addr().String(), "upstream.test", 443, 0)
	handshaking := socksDial(t, l.Addr().String())
	handshaking.Write([]byte{5})

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-serveErr; err != nil {
		t.Fatalf("Serve returned %v after Close, want nil", err)
	}
	expectClosed(t, relaying)
	expectClosed(t, handshaking)
	if err := <-upstreamEnded; err != nil {
		t.Fatalf("upstream: %v", err)
	}
	wait()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := s.Stats(); st.Active != 0 {
		t.Fatalf("stats after Close %+v", st)
	}
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(l2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close: %v, want ErrClosed", err)
	}
	if _, err := net.Dial("tcp", l2.Addr().String()); err == nil {
		t.Fatal("Serve after Close left its listener open")
	}
	if err := s.ListenAndServe(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListenAndServe after Close: %v, want ErrClosed", err)
	}
}

func TestCloseCancelsPendingDial(t *testing.T) {
	started := make(chan struct{})
	dialErr := make(chan error, 1)
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		close(started)
		<-ctx.Done()
		dialErr <- ctx.Err()
		return nil, ctx.Err()
	}
	s, err := NewServer(testConfig(), dial)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(l) }()
	c := socksDial(t, l.Addr().String())
	c.greet(0)
	c.Write(encodeRequest(1, "slow.test", 80))
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-dialErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("dial ctx: %v, want canceled", err)
	}
	<-serveErr
	// The client sees either the failure reply or the close, never success.
	if code, _, err := c.readReply(); err == nil && code == 0 {
		t.Fatal("got success after Close")
	}
}

func TestListenAndServe(t *testing.T) {
	d, wait := routeTo(t, func(c *net.TCPConn) { c.Write([]byte("hi")) })
	cfg := testConfig()
	s, err := NewServer(cfg, d.dial)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Fatal("Addr before listening should be nil")
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe() }()
	select {
	case <-s.Ready():
	case err := <-errc:
		t.Fatalf("ListenAndServe: %v", err)
	}
	c := connect(t, s.Addr().String(), "upstream.test", 443, 0)
	if b, err := io.ReadAll(c); err != nil || string(b) != "hi" {
		t.Fatalf("got %q, %v", b, err)
	}
	wait()
	s.Close()
	if err := <-errc; err != nil {
		t.Fatalf("ListenAndServe returned %v after Close", err)
	}
}

func TestNewServerErrors(t *testing.T) {
	if _, err := NewServer(testConfig(), nil); !errors.Is(err, ErrNilDialer) {
		t.Fatalf("nil dialer: %v", err)
	}
	cfg := testConfig()
	cfg.MaxConns = 0
	if _, err := NewServer(cfg, (&dialRecorder{}).dial); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestCredentialsCopied(t *testing.T) {
	cfg := testConfig()
	cfg.Credentials = map[string]string{"u": "p"}
	s, proxy := startServer(t, cfg, (&dialRecorder{}).dial)
	_ = s
	cfg.Credentials["u"] = "changed" // must not affect the running server
	c := socksDial(t, proxy)
	c.greet(2)
	if st, err := c.login("u", "p"); err != nil || st != 0 {
		t.Fatalf("login: %d, %v", st, err)
	}
}
