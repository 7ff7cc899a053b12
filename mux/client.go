package mux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Client opens proxied streams to the exit over one bond session.
type Client struct {
	cfg   Config
	log   *slog.Logger
	sess  *yamux.Session
	local net.Addr // what streams report as LocalAddr

	streams atomic.Int64 // Dials in progress plus conns not yet closed

	mu      sync.Mutex // guards closing against wg.Add
	closing bool
	wg      sync.WaitGroup // stream-open goroutines
}

// NewClient starts the client side of a yamux session over conn, which it
// owns from now on: Close closes it. conn is normally a bond session.
func NewClient(conn net.Conn, cfg Config) (*Client, error) {
	if conn == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.logger().With("component", "mux", "role", "client")
	sess, err := yamux.Client(conn, cfg.yamuxConfig(log))
	if err != nil {
		return nil, fmt.Errorf("mux: start session: %w", err)
	}
	return &Client{cfg: cfg, log: log, sess: sess, local: tcpAddrOf(conn.LocalAddr())}, nil
}

// tcpAddrOf returns a as a *net.TCPAddr, or 0.0.0.0:0 if it is none:
// go-socks5 puts a stream's LocalAddr into its reply and refuses anything
// that is not a TCP or UDP address.
func tcpAddrOf(a net.Addr) net.Addr {
	if t, ok := a.(*net.TCPAddr); ok && t != nil {
		return t
	}
	return &net.TCPAddr{IP: net.IPv4zero}
}

// targetAddr is a stream's RemoteAddr: the destination as requested.
type targetAddr string

func (targetAddr) Network() string  { return "tcp" }
func (a targetAddr) String() string { return string(a) }

func remoteAddrOf(r Request) net.Addr {
	if r.IP.IsValid() {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(r.IP, r.Port))
	}
	return targetAddr(r.String())
}

// Dial opens a stream to addr ("host:port"; a host name is sent unresolved
// and resolved by the exit) and waits for the exit's answer, at most
// Config.ConnectTimeout and never past ctx. Every error it returns is a
// *ConnectError whose ReplyCode is the SOCKS5 reply to send; a non-OK
// answer from the exit carries the exit's message. The returned conn has
// CloseWrite for half-close.
func (c *Client) Dial(ctx context.Context, addr string) (net.Conn, error) {
	fail := func(st Status, err error) error {
		return &ConnectError{Addr: addr, Status: st, Err: err}
	}
	req, err := ParseRequest(addr)
	if err != nil {
		return nil, fail(StatusGeneralFailure, err)
	}
	if c.sess.IsClosed() {
		return nil, fail(StatusGeneralFailure, ErrSessionClosed)
	}
	if n := c.streams.Add(1); n > int64(c.cfg.MaxStreams) {
		c.streams.Add(-1)
		return nil, fail(StatusGeneralFailure, fmt.Errorf("%w (%d)", ErrTooManyStreams, c.cfg.MaxStreams))
	}
	release := sync.OnceFunc(func() { c.streams.Add(-1) })

	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	st, err := c.open(ctx)
	if err != nil {
		release()
		if ctx.Err() != nil {
			return nil, fail(statusForCtx(ctx), ctx.Err())
		}
		return nil, fail(StatusGeneralFailure, sessionErr(err))
	}
	conn := newStreamConn(st, c.local, remoteAddrOf(req), release)

	// Both the header write and the reply read must end with ctx; yamux
	// knows only deadlines, so ctx's end sets one in the past. (A deadline
	// copied from ctx could expire a moment before ctx reports it.)
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(aLongTimeAgo) })
	status, msg, err := c.handshake(conn, req)
	if !stop() || (err != nil && ctx.Err() != nil) {
		conn.Close()
		return nil, fail(statusForCtx(ctx), ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, fail(StatusGeneralFailure, err)
	}
	if status != StatusOK {
		conn.Close()
		return nil, &ConnectError{Addr: addr, Status: status, Msg: msg}
	}
	_ = st.SetDeadline(time.Time{})
	conn.watchIdle(c.cfg.IdleTimeout, nil)
	return conn, nil
}

func (c *Client) handshake(conn *streamConn, req Request) (Status, string, error) {
	var buf [MaxRequestLen]byte
	hdr, err := AppendRequest(buf[:0], req)
	if err != nil {
		return 0, "", err
	}
	if _, err := conn.Write(hdr); err != nil {
		return 0, "", fmt.Errorf("mux: send request: %w", err)
	}
	return ReadReply(conn)
}

// open is yamux's OpenStream bounded by ctx: OpenStream itself can block
// (on yamux's SYN backlog, or on a bond write stalled by a failover) and
// knows no context. A stream that opens after Dial gave up is closed.
func (c *Client) open(ctx context.Context) (*yamux.Stream, error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, ErrSessionClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()

	type result struct {
		st  *yamux.Stream
		err error
	}
	ch := make(chan result)
	abandon := make(chan struct{})
	go func() {
		defer c.wg.Done()
		st, err := c.sess.OpenStream()
		select {
		case ch <- result{st, err}:
		case <-abandon:
			if st != nil {
				_ = st.Close()
			}
		}
	}()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-ctx.Done():
		close(abandon)
		return nil, ctx.Err()
	}
}

// statusForCtx: our own deadline (or the caller's) is a timeout,
// cancellation is not.
func statusForCtx(ctx context.Context) Status {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return StatusTimeout
	}
	return StatusGeneralFailure
}

func sessionErr(err error) error {
	if errors.Is(err, yamux.ErrSessionShutdown) || errors.Is(err, yamux.ErrRemoteGoAway) {
		return fmt.Errorf("%w: %w", ErrSessionClosed, err)
	}
	return err
}

// Close ends the session and closes its conn; open streams fail with
// ErrSessionClosed. It waits for the client's goroutines and is
// idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	err := c.sess.Close()
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("mux: close session: %w", err)
	}
	return nil
}

// Done is closed when the session has ended, by Close or because the
// conn or the exit went away.
func (c *Client) Done() <-chan struct{} { return c.sess.CloseChan() }

// NumStreams returns the streams in use: Dials in progress plus returned
// conns not yet closed.
func (c *Client) NumStreams() int { return int(c.streams.Load()) }
