package mux

import (
	"context"
	"errors"
	"fmt"
	"github.com/braid-proxy/braid/internal/iox"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// DialFunc dials a target for the exit; addr is "host:port" with the host
// unresolved as the client sent it. Its error is mapped with StatusFor.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Serve runs the exit side of a yamux session over conn (normally a bond
// session), which it owns and closes. For every stream it reads the
// CONNECT header within HandshakeTimeout, enforces MaxStreams and
// MaxPendingConnects, dials the target with dial (bounded by
// ConnectTimeout), answers with the status, then relays both ways,
// propagating half-closes.
//
// Serve returns when the session ends (the error wraps ErrSessionClosed
// and the cause) or ctx is done (the error wraps ctx.Err()), and only
// after every goroutine it started has ended and every target conn is
// closed.
func Serve(ctx context.Context, conn net.Conn, cfg Config, dial DialFunc) error {
	return serve(ctx, conn, cfg, dial, serveHooks{})
}

// serveHooks let tests observe the exit without sleeping.
type serveHooks struct {
	streamDone func() // after a stream's handler ended and released its slot
}

type exit struct {
	cfg     Config
	log     *slog.Logger
	sess    *yamux.Session
	dial    DialFunc
	hooks   serveHooks
	local   net.Addr
	remote  net.Addr
	active  atomic.Int64  // streams being handled
	pending chan struct{} // semaphore of dials in progress

	// lastLimitWarn is when a limit warning was last logged (unix ns),
	// so a flood of refusals logs once per limitLogInterval.
	lastLimitWarn atomic.Int64
}

// limitLogInterval rate-limits the warnings about MaxStreams and
// MaxPendingConnects being hit.
const limitLogInterval = 10 * time.Second

// warnLimit logs that a limit refused a stream, at most once per
// limitLogInterval per session.
func (e *exit) warnLimit(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := e.lastLimitWarn.Load()
	if last != 0 && now-last < int64(limitLogInterval) {
		return
	}
	if e.lastLimitWarn.CompareAndSwap(last, now) {
		e.log.Warn(msg, args...)
	}
}

func serve(ctx context.Context, conn net.Conn, cfg Config, dial DialFunc, hooks serveHooks) error {
	if conn == nil {
		return fmt.Errorf("%w: nil conn", ErrInvalidConfig)
	}
	if dial == nil {
		conn.Close()
		return fmt.Errorf("%w: nil dial func", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		conn.Close()
		return err
	}
	log := cfg.logger().With("component", "mux", "role", "exit")
	sess, err := yamux.Server(conn, cfg.yamuxConfig(log))
	if err != nil {
		conn.Close()
		return fmt.Errorf("mux: start session: %w", err)
	}
	e := &exit{
		cfg: cfg, log: log, sess: sess, dial: dial, hooks: hooks,
		local: conn.LocalAddr(), remote: conn.RemoteAddr(),
		pending: make(chan struct{}, cfg.MaxPendingConnects),
	}

	// sessCtx ends with the session: it cancels dials and closes the
	// target conns of relays still running.
	sessCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sessCtx, func() { _ = sess.Close() })
	defer stop()

	var wg sync.WaitGroup
	var acceptErr error
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			acceptErr = err
			break
		}
		n := e.active.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.handle(sessCtx, st, n)
			e.active.Add(-1)
			if e.hooks.streamDone != nil {
				e.hooks.streamDone()
			}
		}()
	}
	cancel()
	_ = sess.Close()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		log.Info("session stopped", "reason", err)
		return fmt.Errorf("mux: serve: %w", err)
	}
	log.Info("session ended", "reason", acceptErr)
	return fmt.Errorf("%w: %w", ErrSessionClosed, acceptErr)
}

// handle serves one stream; n is its number among the active ones.
func (e *exit) handle(ctx context.Context, st *yamux.Stream, n int64) {
	c := newStreamConn(st, e.local, e.remote, nil)
	if n > int64(e.cfg.MaxStreams) {
		e.warnLimit("mux: stream limit reached, refusing new streams", "max_streams", e.cfg.MaxStreams, "err", ErrTooManyStreams)
		e.refuse(c, StatusGeneralFailure, ErrTooManyStreams.Error())
		return
	}
	_ = st.SetReadDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	req, err := ReadRequest(c)
	if err != nil {
		e.log.Debug("bad request", "stream", st.StreamID(), "err", err)
		status := StatusGeneralFailure
		if errors.Is(err, ErrAddrType) {
			status = StatusAddrTypeNotSupported
		}
		e.refuse(c, status, err.Error())
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	c.remote = remoteAddrOf(req)
	addr := req.String()

	select {
	case e.pending <- struct{}{}:
	default:
		e.log.Debug("connect refused", "addr", addr, "err", ErrTooManyPending)
		e.warnLimit("mux: pending connect limit reached, refusing new connects", "max_pending_connects", e.cfg.MaxPendingConnects, "err", ErrTooManyPending)
		e.refuse(c, StatusGeneralFailure, ErrTooManyPending.Error())
		return
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
	target, err := e.dial(dctx, "tcp", addr)
	cancel()
	<-e.pending
	if err == nil && target == nil {
		err = errors.New("mux: dial returned no conn")
	}
	if err != nil {
		status := StatusFor(err)
		e.log.Debug("connect failed", "addr", addr, "status", status, "err", err)
		e.refuse(c, status, err.Error())
		return
	}

	var reply [replyHeadLen]byte
	_ = st.SetWriteDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	if _, err := c.Write(AppendReply(reply[:0], StatusOK, "")); err != nil {
		e.log.Debug("reply failed", "addr", addr, "err", err)
		target.Close()
		c.Close()
		return
	}
	_ = st.SetWriteDeadline(time.Time{})
	up, down, err := relay(ctx, c, target, e.cfg.IdleTimeout)
	e.log.Debug("stream done", "addr", addr, "connect", time.Since(start).Round(time.Millisecond),
		"up", up, "down", down, "err", err)
}

// refuse answers a failed CONNECT and closes the stream. The write has a
// deadline so a client that stopped reading cannot hold the handler.
func (e *exit) refuse(c *streamConn, status Status, msg string) {
	var buf [MaxReplyLen]byte
	_ = c.SetWriteDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	_, _ = c.Write(AppendReply(buf[:0], status, msg))
	c.Close()
}

// relay copies between the stream s and the target t until both
// directions are done. EOF on one side becomes a half-close of the other;
// any error, the idle timeout or ctx ending closes both. It returns the
// bytes moved stream→target and target→stream and the first error.
func relay(ctx context.Context, s *streamConn, t net.Conn, idle time.Duration) (up, down int64, err error) {
	var once sync.Once
	abort := func(cause error) {
		once.Do(func() {
			s.closeWith(cause)
			t.Close()
		})
	}
	// A direction blocked reading a silent target is only woken by
	// closing the target, when the session or Serve ends.
	stop := context.AfterFunc(ctx, func() { abort(ErrSessionClosed) })
	defer stop()
	s.watchIdle(idle, func() { abort(ErrIdleTimeout) })

	upErr := make(chan error, 1)
	go func() {
		var e error
		up, e = copyHalf(t, s, abort)
		upErr <- e
	}()
	down, err = copyHalf(s, t, abort)
	if e := <-upErr; err == nil {
		err = e
	}
	abort(net.ErrClosed) // both done: close both (no-op after an abort)
	return up, down, err
}

// copyHalf copies src to dst until EOF, then half-closes dst. On any other
// error it aborts the whole relay. iox.Copy holds no large buffer while
// the stream is idle, so thousands of quiet streams stay cheap.
func copyHalf(dst, src net.Conn, abort func(error)) (int64, error) {
	total, err := iox.Copy(dst, src)
	if err != nil {
		abort(err)
		return total, err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			abort(err)
			return total, err
		}
	}
	// Without CloseWrite the peer cannot learn of the EOF; the other
	// direction's end (or the idle timeout) closes both.
	return total, nil
}
