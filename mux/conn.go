package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// aLongTimeAgo is a deadline in the past: setting it wakes every blocked
// Read and Write of a yamux stream, which nothing else does.
var aLongTimeAgo = time.Unix(1, 0)

// streamConn is a yamux stream as a proxy needs it: CloseWrite for
// half-close, a Close that also stops reading, errors that tell a dead
// session from a clean EOF, and an optional idle timeout.
type streamConn struct {
	st            *yamux.Stream
	local, remote net.Addr
	release       func() // run once by the first Close; may be nil

	writeClosed atomic.Bool
	closed      atomic.Bool
	closeOnce   sync.Once
	cause       error // why Close happened; written before closed is set

	idle atomic.Pointer[idleWatch] // nil without IdleTimeout
}

// newStreamConn wraps st. local and remote are what LocalAddr and
// RemoteAddr return.
func newStreamConn(st *yamux.Stream, local, remote net.Addr, release func()) *streamConn {
	return &streamConn{st: st, local: local, remote: remote, release: release}
}

// watchIdle starts the idle timeout; fire runs when it expires (nil: close
// the stream with ErrIdleTimeout).
func (c *streamConn) watchIdle(d time.Duration, fire func()) {
	if d <= 0 {
		return
	}
	if fire == nil {
		fire = func() { c.closeWith(ErrIdleTimeout) }
	}
	c.idle.Store(startIdleWatch(d, fire))
}

func (c *streamConn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", c.cause)
	}
	n, err := c.st.Read(b)
	if w := c.idle.Load(); n > 0 && w != nil {
		w.touch()
	}
	if err != nil {
		err = c.mapErr("read", err)
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", c.cause)
	}
	if c.writeClosed.Load() {
		return 0, c.opErr("write", ErrWriteClosed)
	}
	n, err := c.st.Write(b)
	if w := c.idle.Load(); n > 0 && w != nil {
		w.touch()
	}
	if err != nil {
		err = c.mapErr("write", err)
	}
	return n, err
}

// CloseWrite sends FIN: the peer reads EOF once it has read everything
// written before, while this side can still read.
func (c *streamConn) CloseWrite() error {
	if c.closed.Load() {
		return c.opErr("close", c.cause)
	}
	if c.writeClosed.Swap(true) {
		return nil
	}
	return c.st.Close() // yamux: FIN, reads go on
}

// Close ends both directions: FIN if not sent yet, and no more reading.
// Blocked Read and Write calls return net.ErrClosed. It is idempotent.
func (c *streamConn) Close() error {
	c.closeWith(net.ErrClosed)
	return nil
}

func (c *streamConn) closeWith(cause error) {
	c.closeOnce.Do(func() {
		c.cause = cause
		c.closed.Store(true)
		if w := c.idle.Load(); w != nil {
			w.stop()
		}
		// Release before waking blocked calls, so that whoever sees a
		// Read fail also sees the slot free.
		if c.release != nil {
			c.release()
		}
		// Wake our own blocked calls; yamux would leave a Read blocked
		// until the peer's FIN.
		_ = c.st.SetDeadline(aLongTimeAgo)
		// Sends FIN unless CloseWrite did. If the peer already sent its
		// FIN the stream is gone; otherwise yamux resets it after
		// StreamCloseTimeout, which stops a peer that keeps sending.
		_ = c.st.Close()
	})
}

// mapErr turns yamux's errors into what a net.Conn user expects.
func (c *streamConn) mapErr(op string, err error) error {
	if c.closed.Load() {
		return c.opErr(op, c.cause)
	}
	switch {
	case err == io.EOF:
		// yamux also reads EOF from every stream of a dead session.
		if c.st.Session().IsClosed() {
			return c.opErr(op, ErrSessionClosed)
		}
		return io.EOF
	case errors.Is(err, yamux.ErrTimeout):
		return c.opErr(op, os.ErrDeadlineExceeded)
	case errors.Is(err, yamux.ErrConnectionReset):
		return c.opErr(op, ErrStreamReset)
	case errors.Is(err, yamux.ErrSessionShutdown):
		return c.opErr(op, ErrSessionClosed)
	case errors.Is(err, yamux.ErrStreamClosed):
		if c.writeClosed.Load() {
			return c.opErr(op, ErrWriteClosed)
		}
		// Neither we nor the user closed it: the session force-closed it,
		// or yamux's close timeout did.
		return c.opErr(op, ErrSessionClosed)
	}
	return c.opErr(op, err)
}

// opErr wraps err like the net package does, so Timeout() and errors.Is
// work the usual way.
func (c *streamConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mux", Source: c.local, Addr: c.remote, Err: err}
}

func (c *streamConn) LocalAddr() net.Addr                { return c.local }
func (c *streamConn) RemoteAddr() net.Addr               { return c.remote }
func (c *streamConn) SetDeadline(t time.Time) error      { return c.st.SetDeadline(t) }
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.st.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.st.SetWriteDeadline(t) }

// idleWatch runs fire once no touch has happened for d. It keeps one
// timer and re-arms it for the remaining time when it fires early, so a
// busy stream costs one atomic store per Read or Write, not a timer reset.
type idleWatch struct {
	d     time.Duration
	start time.Time    // monotonic base for last
	last  atomic.Int64 // time.Since(start) at the last touch

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	fire    func()
}

func startIdleWatch(d time.Duration, fire func()) *idleWatch {
	w := &idleWatch{d: d, start: time.Now(), fire: fire}
	w.mu.Lock()
	w.timer = time.AfterFunc(d, w.check)
	w.mu.Unlock()
	return w
}

func (w *idleWatch) touch() { w.last.Store(int64(time.Since(w.start))) }

func (w *idleWatch) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if idle < w.d {
		w.timer.Reset(w.d - idle)
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.fire()
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}
