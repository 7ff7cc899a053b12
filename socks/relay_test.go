package socks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

const bigSize = 32 << 20

// routeTo starts an upstream running h and returns a dialer routing
// "upstream.test:443" to it.
func routeTo(t *testing.T, h func(c *net.TCPConn)) (*dialRecorder, func()) {
	addr, wait := serveOnce(t, h)
	return &dialRecorder{routes: map[string]string{"upstream.test:443": addr}}, wait
}

func TestLargeDownload(t *testing.T) {
	data := randomBytes(bigSize, 1)
	d, wait := routeTo(t, func(c *net.TCPConn) {
		if _, err := c.Write(data); err != nil {
			t.Errorf("upstream write: %v", err)
		}
	})
	_, proxy := startServer(t, testConfig(), d.dial)
	c := connect(t, proxy, "upstream.test", 443, 0)
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("download: %v after %d bytes", err, n)
	}
	if n != bigSize || [32]byte(h.Sum(nil)) != sum(data) {
		t.Fatalf("downloaded %d bytes, hash mismatch=%v", n, [32]byte(h.Sum(nil)) != sum(data))
	}
	wait()
}

func TestLargeUpload(t *testing.T) {
	data := randomBytes(bigSize, 2)
	// The upstream answers with the hash only after EOF, so this also
	// proves the app's half-close reached it.
	d, wait := routeTo(t, func(c *net.TCPConn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			t.Errorf("upstream read: %v", err)
			return
		}
		c.Write(h.Sum(nil))
	})
	_, proxy := startServer(t, testConfig(), d.dial)
	c := connect(t, proxy, "upstream.test", 443, 0)
	if _, err := c.Write(data); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read hash: %v", err)
	}
	if want := sum(data); !bytes.Equal(got, want[:]) {
		t.Fatalf("upstream hash %x, want %x", got, want)
	}
	wait()
}

func TestHalfClose(t *testing.T) {
	t.Run("upstream closes first, app keeps sending", func(t *testing.T) {
		late := randomBytes(1<<20, 3)
		d, wait := routeTo(t, func(c *net.TCPConn) {
			c.Write([]byte("banner"))
			c.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || sum(got) != sum(late) {
				t.Errorf("upstream got %d bytes (err %v), want the %d late bytes", len(got), err, len(late))
			}
		})
		_, proxy := startServer(t, testConfig(), d.dial)
		c := connect(t, proxy, "upstream.test", 443, 0)
		got, err := io.ReadAll(c) // ends at the upstream's half-close
		if err != nil || string(got) != "banner" {
			t.Fatalf("got %q, %v; want banner then EOF", got, err)
		}
		if _, err := c.Write(late); err != nil {
			t.Fatalf("write after upstream EOF: %v", err)
		}
		c.Conn.(*net.TCPConn).CloseWrite()
		wait()
	})
	t.Run("app closes first, upstream keeps sending", func(t *testing.T) {
		resp := randomBytes(1<<20, 4)
		d, wait := routeTo(t, func(c *net.TCPConn) {
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "request" {
				t.Errorf("upstream got %q, %v", got, err)
			}
			c.Write(resp)
		})
		_, proxy := startServer(t, testConfig(), d.dial)
		c := connect(t, proxy, "upstream.test", 443, 0)
		c.Write([]byte("request"))
		c.Conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || sum(got) != sum(resp) {
			t.Fatalf("got %d bytes, %v; want the %d byte response", len(got), err, len(resp))
		}
		wait()
	})
	t.Run("upstream without CloseWrite", func(t *testing.T) {
		// The app's EOF cannot be passed on, but the other direction
		// must keep working until the upstream ends it.
		resp := randomBytes(256<<10, 5)
		addr, wait := serveOnce(t, func(c *net.TCPConn) {
			buf := make([]byte, 7)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "request" {
				t.Errorf("upstream got %q, %v", buf, err)
			}
			c.Write(resp)
		})
		dial := func(ctx context.Context, a string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, "tcp", addr)
			return noCloseWrite{c}, err
		}
		_, proxy := startServer(t, testConfig(), dial)
		c := connect(t, proxy, "upstream.test", 443, 0)
		c.Write([]byte("request"))
		c.Conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || sum(got) != sum(resp) {
			t.Fatalf("got %d bytes, %v; want the %d byte response", len(got), err, len(resp))
		}
		wait()
	})
}

// noCloseWrite hides CloseWrite and gives a non-TCP LocalAddr, like an
// upstream that is not a TCP socket.
type noCloseWrite struct{ c net.Conn }

func (n noCloseWrite) Read(b []byte) (int, error)    { return n.c.Read(b) }
func (n noCloseWrite) Write(b []byte) (int, error)   { return n.c.Write(b) }
func (n noCloseWrite) Close() error                  { return n.c.Close() }
func (n noCloseWrite) LocalAddr() net.Addr           { return pipeAddr{} }
func (n noCloseWrite) RemoteAddr() net.Addr          { return pipeAddr{} }
func (n noCloseWrite) SetDeadline(t time.Time) error { return n.c.SetDeadline(t) }
func (n noCloseWrite) SetReadDeadline(t time.Time) error {
	return n.c.SetReadDeadline(t)
}
func (n noCloseWrite) SetWriteDeadline(t time.Time) error { return n.c.SetWriteDeadline(t) }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "stream" }
func (pipeAddr) String() string  { return "stream" }

func TestBoundAddress(t *testing.T) {
	t.Run("tcp upstream reports its local address", func(t *testing.T) {
		local := make(chan netip.AddrPort, 1)
		d, wait := routeTo(t, func(c *net.TCPConn) {})
		dial := func(ctx context.Context, a string) (net.Conn, error) {
			c, err := d.dial(ctx, a)
			if err == nil {
				local <- c.LocalAddr().(*net.TCPAddr).AddrPort()
			}
			return c, err
		}
		_, proxy := startServer(t, testConfig(), dial)
		c := socksDial(t, proxy)
		c.greet(0)
		code, bnd, err := c.request(1, "upstream.test", 443)
		if err != nil || code != 0 {
			t.Fatalf("reply %d, %v", code, err)
		}
		if want := <-local; bnd != want {
			t.Fatalf("BND %v, want upstream local address %v", bnd, want)
		}
		wait()
	})
	t.Run("non-tcp upstream gives 0.0.0.0:0 and success", func(t *testing.T) {
		addr, wait := serveOnce(t, func(c *net.TCPConn) {})
		dial := func(ctx context.Context, a string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, "tcp", addr)
			return noCloseWrite{c}, err
		}
		_, proxy := startServer(t, testConfig(), dial)
		c := socksDial(t, proxy)
		c.greet(0)
		code, bnd, err := c.request(1, "upstream.test", 443)
		if err != nil || code != 0 {
			t.Fatalf("reply %d, %v; want 0", code, err)
		}
		if want := netip.MustParseAddrPort("0.0.0.0:0"); bnd != want {
			t.Fatalf("BND %v, want %v", bnd, want)
		}
		wait()
	})
}

func TestDestinationsPassedToDialer(t *testing.T) {
	cases := []struct {
		host string
		port uint16
		want string // "" means rejected with 4 and never dialed
	}{
		{"example.test", 80, "example.test:80"},
		{"Example.TEST.", 443, "Example.TEST.:443"},
		{"_srv.x-y.test", 1, "_srv.x-y.test:1"},
		{"192.0.2.1", 8080, "192.0.2.1:8080"},       // sent as IPv4
		{"2001:db8::1", 8080, "[2001:db8::1]:8080"}, // sent as IPv6
		{"::ffff:192.0.2.7", 9, "192.0.2.7:9"},      // IPv6-mapped IPv4
		{"", 80, ""},
		{"bad host", 80, ""},
		{"a..b", 80, ""},
		{"x\x00y", 80, ""},
		{"example.test", 0, ""},
		{"192.0.2.1", 0, ""},
	}
	for _, tc := range cases {
		t.Run(strconv.Quote(tc.host), func(t *testing.T) {
			d := &dialRecorder{err: codeError(5)}
			_, proxy := startServer(t, testConfig(), d.dial)
			wantCode := byte(5)
			if tc.want == "" {
				wantCode = 4
			}
			c := connect(t, proxy, tc.host, tc.port, wantCode)
			expectClosed(t, c)
			got := d.requested()
			if tc.want == "" && len(got) != 0 {
				t.Fatalf("dialed %q for an invalid destination", got)
			}
			if tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("dialer asked for %q, want %q", got, tc.want)
			}
		})
	}
	// A domain that is an IP literal is passed on as that literal.
	t.Run("ip literal as domain", func(t *testing.T) {
		d := &dialRecorder{err: codeError(5)}
		_, proxy := startServer(t, testConfig(), d.dial)
		c := socksDial(t, proxy)
		c.greet(0)
		req := []byte{5, 1, 0, 3, 3, ':', ':', '1', 0, 80}
		c.Write(req)
		if code, _, err := c.readReply(); err != nil || code != 5 {
			t.Fatalf("reply %d, %v", code, err)
		}
		if got := d.requested(); len(got) != 1 || got[0] != "[::1]:80" {
			t.Fatalf("dialer asked for %q", got)
		}
	})
}

func TestPipelinedDataAfterRequest(t *testing.T) {
	// Bytes sent in the same segment as the request sit in go-socks5's
	// buffered reader; they must not be lost.
	d, wait := routeTo(t, func(c *net.TCPConn) {
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "early bytes" {
			t.Errorf("upstream got %q, %v", got, err)
		}
	})
	_, proxy := startServer(t, testConfig(), d.dial)
	c := socksDial(t, proxy)
	msg := append([]byte{5, 1, 0}, encodeRequest(1, "upstream.test", 443)...)
	msg = append(msg, "early bytes"...)
	c.Write(msg)
	var m [2]byte
	io.ReadFull(c, m[:])
	if code, _, err := c.readReply(); err != nil || code != 0 {
		t.Fatalf("reply %d, %v", code, err)
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	wait()
}
