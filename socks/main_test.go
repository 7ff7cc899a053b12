package socks

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ioTimeout bounds every blocking test step so a bug fails instead of
// hanging; it is never used to wait for something to happen.
const ioTimeout = 10 * time.Second

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig() Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Logger = discardLogger()
	return c
}

// startServer serves s on a fresh loopback listener and, at cleanup, closes
// it and checks that Serve returned nil.
func startServer(t testing.TB, cfg Config, dial Dialer) (*Server, string) {
	t.Helper()
	return startServerWith(t, cfg, dial, nil)
}

// startServerWith is startServer with a hook to adjust the Server (test
// hooks) before it serves.
func startServerWith(t testing.TB, cfg Config, dial Dialer, prep func(*Server)) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg, dial)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if prep != nil {
		prep(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return s, l.Addr().String()
}

// dialRecorder is a Dialer that records every addr it is asked for and
// maps names to real loopback addresses (or returns a crafted error).
type dialRecorder struct {
	mu     sync.Mutex
	addrs  []string
	routes map[string]string // requested addr -> real loopback addr
	err    error             // returned for unrouted addrs; nil means a generic error
}

func (d *dialRecorder) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	real, ok := d.routes[addr]
	err := d.err
	d.mu.Unlock()
	if !ok {
		if err == nil {
			err = fmt.Errorf("test dialer: no route to %s", addr)
		}
		return nil, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", real)
}

func (d *dialRecorder) requested() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// codeError is a dial error that names its SOCKS reply, like mux's
// *ConnectError.
type codeError byte

func (e codeError) Error() string   { return fmt.Sprintf("test: refused with code %d", byte(e)) }
func (e codeError) ReplyCode() byte { return byte(e) }

// --- a minimal SOCKS5 client, written from RFC 1928/1929 independently of
// the server code ---

type socksConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *socksConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func socksDial(t testing.TB, proxy string) *socksConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return &socksConn{Conn: c, r: bufio.NewReader(c)}
}

// greet sends the method list and returns the method the server chose.
func (c *socksConn) greet(methods ...byte) (byte, error) {
	msg := append([]byte{5, byte(len(methods))}, methods...)
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c.r, rep[:]); err != nil {
		return 0, err
	}
	if rep[0] != 5 {
		return 0, fmt.Errorf("method reply version %d", rep[0])
	}
	return rep[1], nil
}

// login runs RFC 1929 and returns the status byte (0 = success).
func (c *socksConn) login(user, pass string) (byte, error) {
	msg := []byte{1, byte(len(user))}
	msg = append(msg, user...)
	msg = append(msg, byte(len(pass)))
	msg = append(msg, pass...)
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c.r, rep[:]); err != nil {
		return 0, err
	}
	if rep[0] != 1 {
		return 0, fmt.Errorf("auth reply version %d", rep[0])
	}
	return rep[1], nil
}

// encodeRequest builds a request; host is an IP literal (sent as IPv4 or
// IPv6) or a name (sent as a domain).
func encodeRequest(cmd byte, host string, port uint16) []byte {
	msg := []byte{5, cmd, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			a := ip.As4()
			msg = append(append(msg, 1), a[:]...)
		} else {
			a := ip.As16()
			msg = append(append(msg, 4), a[:]...)
		}
	} else {
		msg = append(append(msg, 3, byte(len(host))), host...)
	}
	return binary.BigEndian.AppendUint16(msg, port)
}

// request sends a request and reads the reply.
func (c *socksConn) request(cmd byte, host string, port uint16) (byte, netip.AddrPort, error) {
	if _, err := c.Write(encodeRequest(cmd, host, port)); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return c.readReply()
}

func (c *socksConn) readReply() (byte, netip.AddrPort, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, netip.AddrPort{}, err
	}
	if hdr[0] != 5 || hdr[2] != 0 {
		return 0, netip.AddrPort{}, fmt.Errorf("bad reply header % x", hdr)
	}
	var n int
	switch hdr[3] {
	case 1:
		n = 4
	case 4:
		n = 16
	default:
		return 0, netip.AddrPort{}, fmt.Errorf("reply address type %d", hdr[3])
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return 0, netip.AddrPort{}, err
	}
	ip, _ := netip.AddrFromSlice(b[:n])
	return hdr[1], netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[n:])), nil
}

// connect does greeting (no auth) and CONNECT; it fails the test unless the
// server answers with want.
func connect(t testing.TB, proxy, host string, port uint16, want byte) *socksConn {
	t.Helper()
	c := socksDial(t, proxy)
	if m, err := c.greet(0); err != nil || m != 0 {
		t.Fatalf("greet: method %d, err %v", m, err)
	}
	code, _, err := c.request(1, host, port)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if code != want {
		t.Fatalf("reply code %d, want %d", code, want)
	}
	return c
}

// expectClosed reads until the server closes c and fails if anything but
// EOF (or a reset) arrives first.
func expectClosed(t testing.TB, c io.Reader) {
	t.Helper()
	b, err := io.ReadAll(c)
	if len(b) != 0 {
		t.Fatalf("got % x before close, want nothing", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by server: %v", err)
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func sum(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

// serveOnce accepts one connection on a new loopback listener and runs h on
// it; the returned wait blocks until h is done.
func serveOnce(t testing.TB, h func(c *net.TCPConn)) (addr string, wait func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		h(c.(*net.TCPConn))
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), func() { <-done }
}

// connDoneChan makes s report every finished client connection.
func connDoneChan(s *Server) <-chan struct{} {
	ch := make(chan struct{}, 64)
	s.connDone = func() { ch <- struct{}{} }
	return ch
}

func waitDone(t testing.TB, ch <-chan struct{}, n int) {
	t.Helper()
	timer := time.NewTimer(ioTimeout)
	defer timer.Stop()
	for range n {
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("client connection not torn down within %v", ioTimeout)
		}
	}
}
