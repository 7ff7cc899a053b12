//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SOCKS5 address types (RFC 1928).
const (
	atypIPv4   byte = 1
	atypDomain byte = 3
	atypIPv6   byte = 4
)

// socksAddr is a destination exactly as it goes on the wire.
type socksAddr struct {
	Type byte
	Addr []byte // 4 or 16 bytes, or the name without its length byte
	Port uint16
}

func ipDest(ip string, port uint16) socksAddr {
	a := netip.MustParseAddr(ip)
	if a.Is4() {
		b := a.As4()
		return socksAddr{atypIPv4, b[:], port}
	}
	b := a.As16()
	return socksAddr{atypIPv6, b[:], port}
}

func nameDest(name string, port uint16) socksAddr {
	return socksAddr{atypDomain, []byte(name), port}
}

func (a socksAddr) String() string {
	switch a.Type {
	case atypIPv4, atypIPv6:
		ip, _ := netip.AddrFromSlice(a.Addr)
		return fmt.Sprintf("atyp%d %s", a.Type, netip.AddrPortFrom(ip, a.Port))
	}
	return fmt.Sprintf("atyp%d %q:%d", a.Type, a.Addr, a.Port)
}

// connectRequest is a no-auth greeting followed by a CONNECT for dst.
func connectRequest(dst socksAddr) []byte {
	b := []byte{5, 1, 0, 5, 1, 0, dst.Type}
	if dst.Type == atypDomain {
		b = append(b, byte(len(dst.Addr)))
	}
	b = append(b, dst.Addr...)
	return binary.BigEndian.AppendUint16(b, dst.Port)
}

// errNoReply: the proxy closed the connection without a SOCKS reply.
var errNoReply = errors.New("no SOCKS reply")

// socksConnect asks proxy for dst with a raw SOCKS5 client and returns the
// reply code; on code 0 the conn is ready for payload, otherwise it is
// closed. Everything is bounded by timeout.
func socksConnect(proxy string, dst socksAddr, timeout time.Duration) (net.Conn, byte, error) {
	c, err := net.DialTimeout("tcp", proxy, timeout)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(connectRequest(dst)); err != nil {
		c.Close()
		return nil, 0, err
	}
	rep, err := readSocksReply(c)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	if rep != 0 {
		c.Close()
		return nil, rep, nil
	}
	c.SetDeadline(time.Time{})
	return c, 0, nil
}

// readSocksReply reads the method choice and the CONNECT reply, checking
// their framing, and returns the reply code.
func readSocksReply(c net.Conn) (byte, error) {
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errNoReply
		}
		return 0, fmt.Errorf("method reply: %w", err)
	}
	if m != [2]byte{5, 0} {
		return 0, fmt.Errorf("method reply %x", m)
	}
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return 0, fmt.Errorf("reply header: %w", err)
	}
	if h[0] != 5 || h[2] != 0 {
		return 0, fmt.Errorf("reply header %x", h)
	}
	var n int
	switch h[3] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	default:
		return 0, fmt.Errorf("reply address type %d", h[3])
	}
	if _, err := io.ReadFull(c, make([]byte, n+2)); err != nil {
		return 0, fmt.Errorf("reply address: %w", err)
	}
	return h[1], nil
}

// mustConnect is socksConnect that requires success.
func mustConnect(t testing.TB, proxy string, dst socksAddr) net.Conn {
	t.Helper()
	c, rep, err := socksConnect(proxy, dst, 20*time.Second)
	if err != nil || rep != 0 {
		t.Fatalf("CONNECT %v via %s: reply %d, %v", dst, proxy, rep, err)
	}
	return c
}

// localDest is the SOCKS destination of a listener on 127.0.0.1.
func localDest(addr net.Addr) socksAddr {
	return ipDest("127.0.0.1", uint16(addr.(*net.TCPAddr).Port))
}

// pattern is an endless deterministic byte stream for a seed.
type pattern struct{ r *rand.ChaCha8 }

func newPattern(seed uint64) *pattern {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &pattern{rand.NewChaCha8(s)}
}

func (p *pattern) Read(b []byte) (int, error) {
	p.r.Read(b)
	return len(b), nil
}

// patternSum is the sha256 of the first n bytes of pattern seed.
func patternSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, io.LimitReader(newPattern(seed), n))
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// target is a TCP server on 127.0.0.1 that counts connections and runs
// handle on each; Cleanup closes it and every open connection and waits
// for the handlers.
type target struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startTarget(t testing.TB, handle func(net.Conn)) *target {
	t.Helper()
	return startTargetOn(t, "tcp", "127.0.0.1:0", handle)
}

func startTargetOn(t testing.TB, network, addr string, handle func(net.Conn)) *target {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, conns: map[net.Conn]struct{}{}}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.accepted.Add(1)
			tg.mu.Lock()
			tg.conns[c] = struct{}{}
			tg.mu.Unlock()
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				if handle != nil {
					handle(c)
				} else {
					io.Copy(io.Discard, c)
				}
				c.Close()
				tg.mu.Lock()
				delete(tg.conns, c)
				tg.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(tg.close)
	return tg
}

func (tg *target) Addr() net.Addr { return tg.ln.Addr() }

func (tg *target) close() {
	tg.ln.Close()
	tg.mu.Lock()
	for c := range tg.conns {
		c.Close()
	}
	tg.mu.Unlock()
	tg.wg.Wait()
}

// echo copies everything back, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// sendPattern returns a handler that writes n bytes of pattern seed
// (n < 0: endlessly) and closes.
func sendPattern(seed uint64, n int64, written *atomic.Int64) func(net.Conn) {
	return func(c net.Conn) {
		var src io.Reader = newPattern(seed)
		if n >= 0 {
			src = io.LimitReader(src, n)
		}
		buf := make([]byte, 64<<10)
		for {
			k, _ := src.Read(buf)
			if k == 0 {
				return
			}
			w, err := c.Write(buf[:k])
			if written != nil {
				written.Add(int64(w))
			}
			if err != nil {
				return
			}
		}
	}
}

// echoRoundTrip writes n bytes of pattern seed through c, half-closes,
// and checks that exactly the same bytes come back.
func echoRoundTrip(c net.Conn, seed uint64, n int64) error {
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, io.LimitReader(newPattern(seed), n))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", got, rerr)
	}
	if want := patternSum(seed, n); got != n || [32]byte(h.Sum(nil)) != want {
		return fmt.Errorf("echo: %d of %d bytes back, sha256 mismatch=%v", got, n, [32]byte(h.Sum(nil)) != want)
	}
	return nil
}

// limitConcurrency runs f(i) for i in [0, n) on at most par goroutines and
// waits for them all.
func limitConcurrency(n, par int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
