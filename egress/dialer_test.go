package egress

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.MustParseAddr("::1")
)

// listen opens a TCP listener on addr ("127.0.0.1:0") closed at test end.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// listen6 is listen on [::1]:port, skipping the test without IPv6 loopback.
func listen6(t *testing.T, port string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp6", net.JoinHostPort("::1", port))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveEcho echoes every connection on ln until the test ends.
func serveEcho(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// assertEcho sends a random payload over c and checks the echo by hash.
func assertEcho(t *testing.T, c net.Conn) {
	t.Helper()
	payload := make([]byte, 256<<10)
	_, _ = rand.Read(payload)
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(got), len(payload))
	}
}

// assertNothingAccepted proves no refused dial reached ln: it makes one
// allowed connection and checks it is the first one the listener accepts.
func assertNothingAccepted(t *testing.T, ln net.Listener) {
	t.Helper()
	var d net.Dialer
	probe, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	got, err := acceptOrFail(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.RemoteAddr().String() != probe.LocalAddr().String() {
		t.Fatalf("listener accepted %v before the probe %v: a refused dial connected", got.RemoteAddr(), probe.LocalAddr())
	}
}

// acceptOrFail accepts with a generous deadline, only so that a broken
// build fails instead of hanging; it never orders events.
func acceptOrFail(ln net.Listener) (net.Conn, error) {
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	return ln.Accept()
}

func portOf(ln net.Listener) string {
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func newDialer(t *testing.T, cfg Config) *Dialer {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func allowConfig(dns *fakeDNS, allow ...string) Config {
	cfg := DefaultConfig()
	for _, a := range allow {
		cfg.Policy.Allow = append(cfg.Policy.Allow, netip.MustParsePrefix(a))
	}
	if dns != nil {
		cfg.Resolver = dns.resolver()
	}
	return cfg
}

func TestDialNumericLoopbackRefused(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	port := portOf(ln)
	// An empty fake DNS: a form that slipped past the numeric parser would
	// fail with NXDOMAIN rather than reach a real resolver.
	d := newDialer(t, allowConfig(startFakeDNS(t, nil)))
	for _, host := range []string{
		"127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1",
		"127.0.0.1.", "::ffff:127.0.0.1", "0",
	} {
		t.Run(host, func(t *testing.T) {
			c, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort(host, port))
			if c != nil {
				c.Close()
			}
			de := mustDenied(t, err)
			if de.Host != host {
				t.Errorf("Host = %q, want %q", de.Host, host)
			}
		})
	}
	assertNothingAccepted(t, ln)
}

func TestZeroDialerRefusesLoopback(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	var d Dialer
	_, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	mustDenied(t, err)
	assertNothingAccepted(t, ln)
}

func TestDialIPv6LoopbackRefused(t *testing.T) {
	ln := listen6(t, "0")
	var d Dialer
	_, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if de := mustDenied(t, err); de.Addr != loopback6 {
		t.Errorf("Addr = %v, want ::1", de.Addr)
	}
	assertNothingAccepted(t, ln)
}

func TestDialNameResolvingToLoopbackRefused(t *testing.T) {
	dns := startFakeDNS(t, map[string][]netip.Addr{
		"rebind.test":  {loopback4},
		"rebind6.test": {loopback6},
		"both.test":    {loopback4, loopback6},
	})
	ln := listen(t, "127.0.0.1:0")
	port := portOf(ln)
	d := newDialer(t, allowConfig(dns))
	tests := []struct {
		network, name string
		want          []netip.Addr
	}{
		{"tcp", "rebind.test", []netip.Addr{loopback4}},
		{"tcp4", "rebind.test", []netip.Addr{loopback4}},
		{"tcp", "REBIND.test", []netip.Addr{loopback4}},
		{"udp", "rebind.test", []netip.Addr{loopback4}},
		{"tcp", "rebind6.test", []netip.Addr{loopback6}},
		{"tcp", "both.test", []netip.Addr{loopback4, loopback6}},
		{"udp", "both.test", []netip.Addr{loopback4, loopback6}},
	}
	for _, tt := range tests {
		t.Run(tt.network+"/"+tt.name, func(t *testing.T) {
			c, err := d.DialContext(t.Context(), tt.network, net.JoinHostPort(tt.name, port))
			if c != nil {
				c.Close()
			}
			de := mustDenied(t, err)
			// The refusal must come from the Control hook, after resolution.
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Errorf("err %T is not a *net.OpError: not the Control path", err)
			}
			if de.Host != tt.name {
				t.Errorf("Host = %q, want %q", de.Host, tt.name)
			}
			found := false
			for _, a := range tt.want {
				found = found || de.Addr == a
			}
			if !found {
				t.Errorf("Addr = %v, want one of %v", de.Addr, tt.want)
			}
		})
	}
	assertNothingAccepted(t, ln)
}

func TestDialAllowedEcho(t *testing.T) {
	dns := startFakeDNS(t, map[string][]netip.Addr{"rebind.test": {loopback4}})
	ln := listen(t, "127.0.0.1:0")
	serveEcho(t, ln)
	port := portOf(ln)
	d := newDialer(t, allowConfig(dns, "127.0.0.0/8"))
	// Legacy forms prove canonicalisation: sent to the fake DNS they would
	// fail with NXDOMAIN.
	for _, host := range []string{"127.0.0.1", "rebind.test", "2130706433", "0x7f.1", "0177.0.0.1", "::ffff:127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			c, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort(host, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.RemoteAddr().String(); got != ln.Addr().String() {
				t.Errorf("connected to %s, want %s", got, ln.Addr())
			}
			assertEcho(t, c)
		})
	}
}

func TestDialAllowedIPv6Echo(t *testing.T) {
	ln := listen6(t, "0")
	serveEcho(t, ln)
	d := newDialer(t, allowConfig(nil, "::1/128"))
	c, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	assertEcho(t, c)
}

// TestDialMixedResolutionSkipsDenied: a name with one allowed and one denied
// address connects to the allowed one and never to the denied one, in
// whatever order the resolver and happy eyeballs try them.
func TestDialMixedResolutionSkipsDenied(t *testing.T) {
	allowed := listen(t, "127.0.0.1:0")
	port := portOf(allowed)
	denied, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%s: %v", port, err)
	}
	t.Cleanup(func() { denied.Close() })
	denied6 := listen6(t, port)

	dns := startFakeDNS(t, map[string][]netip.Addr{
		"mixed.test": {netip.MustParseAddr("127.0.0.2"), loopback6, loopback4},
	})
	d := newDialer(t, allowConfig(dns, "127.0.0.1/32"))
	for range 3 {
		c, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("mixed.test", port))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RemoteAddr().String(); got != allowed.Addr().String() {
			c.Close()
			t.Fatalf("connected to %s, want %s", got, allowed.Addr())
		}
		c.Close()
		s, err := acceptOrFail(allowed)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	assertNothingAccepted(t, denied)
	assertNothingAccepted(t, denied6)
}

func TestDialInvalidAddress(t *testing.T) {
	d := newDialer(t, allowConfig(startFakeDNS(t, nil)))
	for _, addr := range []string{
		"noport", ":80", "[]:80", "example.com:0", "example.com:65536", "example.com:http",
		"example.com:-1", "example.com:", "[::1:80", "1.2.3.4.5:80", "256.0.0.1:80", "foo.1:80", "08:80",
	} {
		c, err := d.DialContext(t.Context(), "tcp", addr)
		if c != nil {
			c.Close()
		}
		if !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("%q: err = %v, want ErrInvalidAddress", addr, err)
		}
		var na interface{ NotAllowed() bool }
		if errors.As(err, &na) {
			t.Errorf("%q: malformed address reported as a policy refusal", addr)
		}
	}
}

func TestDialUnsupportedNetwork(t *testing.T) {
	var d Dialer
	for _, network := range []string{"unix", "unixgram", "unixpacket", "ip", "ip4:icmp", "", "TCP"} {
		_, err := d.DialContext(t.Context(), network, "127.0.0.1:80")
		if !errors.Is(err, ErrUnsupportedNetwork) {
			t.Errorf("%q: err = %v, want ErrUnsupportedNetwork", network, err)
		}
	}
}

func TestControlFailsClosed(t *testing.T) {
	var d Dialer
	ctl := d.control("h")
	for _, addr := range []string{"", "garbage", "127.0.0.1", ":80", "[::1]"} {
		de := mustDenied(t, ctl(t.Context(), "tcp", addr, nil))
		if de.Host != "h" {
			t.Errorf("%q: Host = %q", addr, de.Host)
		}
	}
	mustDenied(t, ctl(t.Context(), "tcp4", "169.254.169.254:80", nil))
	mustDenied(t, ctl(t.Context(), "tcp6", "[fe80::1%lo]:80", nil))
	if err := ctl(t.Context(), "tcp4", "1.1.1.1:443", nil); err != nil {
		t.Errorf("public address: %v", err)
	}
}

func TestDialCanceledContext(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	d := newDialer(t, allowConfig(nil, "127.0.0.0/8"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c.Close()
		t.Fatal("dial with canceled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	assertNothingAccepted(t, ln)
}

func TestDialLogsRefusal(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newDialer(t, cfg)
	_, err := d.DialContext(t.Context(), "tcp", "0x7f.1:9")
	mustDenied(t, err)
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(buf.Bytes(), []byte("0x7f.1")) || !bytes.Contains(buf.Bytes(), []byte("loopback")) {
		t.Errorf("log = %q, want host and reason", buf.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConfig(t *testing.T) {
	if got := DefaultConfig(); got.Timeout != DefaultTimeout || DefaultTimeout != 10*time.Second {
		t.Errorf("DefaultConfig().Timeout = %v", got.Timeout)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	var zero Dialer
	if got := zero.timeoutOrDefault(); got != DefaultTimeout {
		t.Errorf("zero Dialer timeout = %v, want %v", got, DefaultTimeout)
	}
	if d := newDialer(t, Config{}); d.timeoutOrDefault() != DefaultTimeout {
		t.Errorf("Config{} timeout = %v", d.timeoutOrDefault())
	}
	bad := DefaultConfig()
	bad.Timeout = -time.Second
	if _, err := New(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative timeout: err = %v", err)
	}
	bad = DefaultConfig()
	bad.Policy.Allow = []netip.Prefix{netip.PrefixFrom(loopback4, 8)}
	if _, err := New(bad); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("non-canonical allow: err = %v", err)
	}

	// New copies the policy: later edits to the caller's slice change nothing.
	cfg := allowConfig(nil, "127.0.0.0/8")
	d := newDialer(t, cfg)
	cfg.Policy.Allow[0] = netip.MustParsePrefix("10.0.0.0/8")
	if err := d.Policy().Check(loopback4); err != nil {
		t.Errorf("policy changed through the caller's slice: %v", err)
	}
	p := d.Policy()
	p.Allow[0] = netip.MustParsePrefix("10.0.0.0/8")
	if err := d.Policy().Check(loopback4); err != nil {
		t.Errorf("policy changed through Policy()'s copy: %v", err)
	}
}
