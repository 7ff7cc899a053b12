package link

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what a Listener has seen. Failures are only counted and
// logged at debug level: nothing about them reaches the peer.
type Stats struct {
	// Accepted is the number of raw connections accepted.
	Accepted uint64
	// Authenticated is the number that completed the handshake.
	Authenticated uint64
	// FailedTLS is the number whose TLS handshake failed (not TLS, not
	// 1.3, or aborted).
	FailedTLS uint64
	// FailedAuth is the number that completed TLS but did not prove the
	// secret.
	FailedAuth uint64
	// TimedOut is the number that hit HandshakeTimeout (slow or stalled
	// peers), whatever step they were at.
	TimedOut uint64
	// Pending is the number of handshakes in progress now, including
	// authenticated conns waiting for Accept.
	Pending int64
}

// Listener wraps a net.Listener for the exit: it runs Server.Handshake on
// every accepted connection concurrently, at most Config.MaxPending at a
// time, each bounded by Config.HandshakeTimeout, and Accept yields only
// connections that authenticated. One stalled or hostile peer therefore
// never delays another.
type Listener struct {
	inner  net.Listener
	srv    *Server
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one token per handshake in progress
	ready  chan net.Conn // authenticated conns for Accept
	done   chan struct{} // closed by Close
	failed chan struct{} // closed when the inner listener fails for good
	err    error         // why, set before failed is closed
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	accepted, authenticated, failedTLS, failedAuth, timedOut atomic.Uint64
	pending                                                  atomic.Int64
}

// NewListener starts accepting on inner. Close the Listener, not inner.
func NewListener(inner net.Listener, s *Server) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		inner:  inner,
		srv:    s,
		log:    s.log,
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, s.cfg.MaxPending),
		ready:  make(chan net.Conn),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next authenticated connection (a *tls.Conn). After
// Close it returns ErrClosed; if the inner listener failed, its error.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	default:
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	case <-l.failed:
		return nil, l.err
	}
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting, aborts the handshakes in progress, closes
// authenticated conns nobody accepted, and waits for its goroutines. It is
// idempotent and returns the inner listener's Close error.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		l.closeErr = l.inner.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	return Stats{
		Accepted:      l.accepted.Load(),
		Authenticated: l.authenticated.Load(),
		FailedTLS:     l.failedTLS.Load(),
		FailedAuth:    l.failedAuth.Load(),
		TimedOut:      l.timedOut.Load(),
		Pending:       l.pending.Load(),
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		// Take a slot before accepting: when MaxPending handshakes are
		// running, new peers wait in the kernel's queue.
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		raw, err := l.inner.Accept()
		if err != nil {
			<-l.slots
			select {
			case <-l.done:
				return
			default:
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait, retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.Warn("link: accept failed, retrying", "err", err, "in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-l.done:
					t.Stop()
					return
				}
				continue
			}
			l.err = err
			close(l.failed)
			return
		}
		backoff = 0
		l.accepted.Add(1)
		l.pending.Add(1)
		l.wg.Add(1)
		go l.handle(raw)
	}
}

func (l *Listener) handle(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	defer l.pending.Add(-1)
	c, err := l.srv.Handshake(l.ctx, raw)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && l.ctx.Err() == nil:
			l.timedOut.Add(1)
		case errors.Is(err, ErrAuthFailed):
			l.failedAuth.Add(1)
		default:
			l.failedTLS.Add(1)
		}
		l.log.Debug("link: handshake failed", "remote", addrString(raw.RemoteAddr()), "err", err)
		return
	}
	l.authenticated.Add(1)
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}
