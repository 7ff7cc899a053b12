package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/braid-proxy/braid/internal/netlab"
)

// ErrMismatch means a download's bytes differ from the payload.
var ErrMismatch = errors.New("bench: payload mismatch")

// DialFunc opens a connection to the target server, by whatever path is
// being measured (direct link, MPTCP, SOCKS proxy).
type DialFunc func(ctx context.Context) (net.Conn, error)

// Download is the outcome of one fetch.
type Download struct {
	// Bytes is the body length received.
	Bytes int64
	// Sum is the sha256 of the body received.
	Sum [32]byte
	// Start is when the dial began, Connected when it finished (after the
	// SOCKS handshake for proxies), FirstByte when the first response byte
	// arrived and End when the last body byte did.
	Start, Connected, FirstByte, End time.Time
	// Timeline counts body bytes as they arrived (from Start).
	Timeline *Timeline
}

// Mbps is the goodput from the request to the last byte.
func (d Download) Mbps() float64 {
	s := d.End.Sub(d.Connected).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(d.Bytes) * 8 / s / 1e6
}

// Trigger runs Do (on its own goroutine, so the download keeps reading)
// once AtBytes body bytes have arrived; At is set to when Do was called.
type Trigger struct {
	AtBytes int64
	Do      func()
	At      time.Time
}

// Fetch dials and downloads n bytes of Payload(seed) from /bytes, recording
// arrival on a timeline, and checks length and sha256 against the payload.
// A mismatch returns the Download with an ErrMismatch error.
func Fetch(ctx context.Context, dial DialFunc, n int64, seed uint64) (Download, error) {
	return FetchTriggered(ctx, dial, n, seed, nil)
}

// FetchTriggered is Fetch with triggers fired as bytes arrive; it returns
// only after every fired trigger's Do has returned.
func FetchTriggered(ctx context.Context, dial DialFunc, n int64, seed uint64, trig []*Trigger) (Download, error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	fire := func(total int64) {
		for _, t := range trig {
			if t.At.IsZero() && total >= t.AtBytes {
				t.At = time.Now()
				wg.Add(1)
				go func() { defer wg.Done(); t.Do() }()
			}
		}
	}
	d := Download{Start: time.Now()}
	d.Timeline = NewTimeline(d.Start)
	c, err := dial(ctx)
	if err != nil {
		return d, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	d.Connected = time.Now()
	req := fmt.Sprintf("GET /bytes/%d?seed=%d HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n", n, seed)
	if _, err := io.WriteString(c, req); err != nil {
		return d, fmt.Errorf("bench: fetch: send request: %w", err)
	}
	fb := &firstByte{r: c}
	resp, err := http.ReadResponse(bufio.NewReaderSize(fb, 64<<10), nil)
	if err != nil {
		return d, fmt.Errorf("bench: fetch: response: %w", err)
	}
	defer resp.Body.Close()
	d.FirstByte = fb.at
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("bench: fetch: status %s", resp.Status)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 {
			now := time.Now()
			h.Write(buf[:m])
			d.Bytes += int64(m)
			d.Timeline.Add(now, m)
			d.End = now
			fire(d.Bytes)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, fmt.Errorf("bench: fetch: after %d of %d bytes: %w", d.Bytes, n, err)
		}
	}
	h.Sum(d.Sum[:0])
	if d.Bytes != n || d.Sum != PayloadSum(seed, n) {
		return d, fmt.Errorf("%w: got %d bytes sha256 %x, want %d bytes", ErrMismatch, d.Bytes, d.Sum[:8], n)
	}
	return d, nil
}

// firstByte notes when the first byte was read.
type firstByte struct {
	r  io.Reader
	at time.Time
}

func (f *firstByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.at.IsZero() {
		f.at = time.Now()
	}
	return n, err
}

// Small does one keep-alive request for n bytes on an open connection and
// returns the round-trip time.
func Small(c net.Conn, br *bufio.Reader, n int) (time.Duration, error) {
	start := time.Now()
	if _, err := fmt.Fprintf(c, "GET /small/%d HTTP/1.1\r\nHost: target\r\n\r\n", n); err != nil {
		return 0, fmt.Errorf("bench: small: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, fmt.Errorf("bench: small: %w", err)
	}
	m, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || m != int64(n) {
		return 0, fmt.Errorf("bench: small: got %d of %d bytes: %v", m, n, err)
	}
	return time.Since(start), nil
}

// DirectDial dials the server over link k only (source address ClientIP).
func DirectDial(lab *netlab.Lab, srv *Server, k int) DialFunc {
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(lab.Link(k).ClientIP, 0)),
	}
	return func(ctx context.Context) (net.Conn, error) {
		return lab.DialContext(ctx, netlab.Client, d, "tcp4", srv.Target())
	}
}

// MPTCPDial dials the server with Multipath TCP, the first subflow over
// link primary; SetupMPTCP must have configured the other links. It fails if
// the connection fell back to plain TCP.
func MPTCPDial(lab *netlab.Lab, srv *Server, primary int) DialFunc {
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(lab.Link(primary).ClientIP, 0)),
	}
	d.SetMultipathTCP(true)
	return func(ctx context.Context) (net.Conn, error) {
		c, err := lab.DialContext(ctx, netlab.Client, d, "tcp4", srv.Target())
		if err != nil {
			return nil, err
		}
		if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
			c.Close()
			return nil, fmt.Errorf("bench: connection is not MPTCP (fell back to TCP): %v", err)
		}
		return c, nil
	}
}

// SOCKSDial dials the SOCKS5 proxy at socks inside the client namespace
// and asks it for the server's target address.
func SOCKSDial(lab *netlab.Lab, socks string, srv *Server) DialFunc {
	return SOCKSDialTo(lab, socks, srv.Target())
}

// SOCKSDialTo is SOCKSDial to any target host:port.
func SOCKSDialTo(lab *netlab.Lab, socks, target string) DialFunc {
	d := &net.Dialer{Timeout: 10 * time.Second}
	host, p, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(p)
	return func(ctx context.Context) (net.Conn, error) {
		c, err := lab.DialContext(ctx, netlab.Client, d, "tcp4", socks)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		if err := SOCKSConnect(c, host, uint16(port)); err != nil {
			c.Close()
			return nil, err
		}
		c.SetDeadline(time.Time{})
		return c, nil
	}
}
