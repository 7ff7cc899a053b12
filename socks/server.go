package socks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	socks5 "github.com/things-go/go-socks5"
	"github.com/things-go/go-socks5/statute"
)

// Dialer opens the upstream connection for one CONNECT. addr is "host:port"
// with the host exactly as the client sent it (a domain name is not
// resolved; an IPv6 literal is in brackets). It must honour ctx, which is
// cancelled by Server.Close (the Server does not notice a client leaving
// mid-dial, so the Dialer should have its own timeout). If its error (or
// one it wraps) has a method ReplyCode() byte, that code is sent to the
// client (0 or an unassigned code above 8 becomes 1, general failure).
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// Stats is a snapshot of a Server's counters.
type Stats struct {
	// Active is the number of client connections open now.
	Active int
	// Total counts client connections accepted and served since start.
	Total uint64
	// Rejected counts connections closed at once because MaxConns was
	// reached; they are not in Total.
	Rejected uint64
	// HandshakeFailures counts connections that ended before a supported
	// request was parsed: timeout, bad version, no acceptable method,
	// failed authentication, malformed request, unknown command or
	// address type.
	HandshakeFailures uint64
	// AuthFailures counts RFC 1929 logins refused (also in
	// HandshakeFailures).
	AuthFailures uint64
	// Replies counts SOCKS5 replies sent, indexed by reply code 0..8.
	Replies [9]uint64
}

// overloadLogInterval rate-limits the "connection limit reached" warning,
// so a flood does not also flood the log.
const overloadLogInterval = 10 * time.Second

// Server is a SOCKS5 server. Create it with NewServer; it is safe for
// concurrent use.
type Server struct {
	cfg   Config
	dial  Dialer
	log   *slog.Logger
	socks *socks5.Server

	// ctx is cancelled by Close so in-flight dials give up.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*clientConn]struct{}
	addr      net.Addr
	ready     chan struct{}
	wg        sync.WaitGroup

	total          atomic.Uint64
	rejected       atomic.Uint64
	handshakeFails atomic.Uint64
	authFails      atomic.Uint64
	replies        [9]atomic.Uint64
	lastOverload   atomic.Int64 // unix nanoseconds of the last overload warning

	// connDone, if set (tests only, before serving), runs after a client
	// connection has been fully torn down and removed from the count.
	connDone func()
}

// NewServer validates cfg and returns a Server that sends every CONNECT to
// dial.
func NewServer(cfg Config, dial Dialer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dial == nil {
		return nil, ErrNilDialer
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		dial:      dial,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*clientConn]struct{}),
		ready:     make(chan struct{}),
	}
	opts := []socks5.Option{
		// The default resolver would look names up locally: a DNS leak.
		socks5.WithResolver(noResolve{}),
		socks5.WithRule(socks5.NewPermitAll()),
		socks5.WithConnectHandle(s.handleConnect),
		// go-socks5's own BIND handler already answers 7, but its UDP
		// ASSOCIATE handler really relays UDP; braid carries TCP only.
		socks5.WithBindHandle(s.handleUnsupported),
		socks5.WithAssociateHandle(s.handleUnsupported),
	}
	if cfg.Credentials != nil {
		store := make(credStore, len(cfg.Credentials))
		for u, p := range cfg.Credentials {
			store[u] = sha256.Sum256([]byte(p))
		}
		opts = append(opts, socks5.WithAuthMethods([]socks5.Authenticator{
			socks5.UserPassAuthenticator{Credentials: store},
		}))
	}
	s.socks = socks5.NewServer(opts...)
	return s, nil
}

// ListenAndServe listens on Config.Listen and serves until Close.
func (s *Server) ListenAndServe() error {
	if s.isClosed() {
		return ErrClosed
	}
	var lc net.ListenConfig
	l, err := lc.Listen(s.ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("socks: listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Close (then it returns nil) or until
// l fails permanently. It takes ownership of l. Serve may be called for
// several listeners.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	if s.addr == nil {
		s.addr = l.Addr()
		close(s.ready)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if !retryableAccept(err) {
				return fmt.Errorf("socks: accept: %w", err)
			}
			// Out of file descriptors and the like: back off instead of
			// spinning, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("socks: accept failed, retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		s.accept(c)
	}
}

func retryableAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EAGAIN)
}

// accept registers c and starts serving it, or closes it at once when the
// server is closed or full.
func (s *Server) accept(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		// Count and log before closing, so the client's EOF implies both.
		s.logOverload(s.rejected.Add(1))
		c.Close()
		return
	}
	cc := &clientConn{Conn: c, srv: s}
	s.conns[cc] = struct{}{}
	// Add under mu, which Close takes before Wait: no Add after Wait.
	s.wg.Add(1)
	s.mu.Unlock()
	s.total.Add(1)
	go s.serveConn(cc)
}

func (s *Server) logOverload(rejected uint64) {
	now := time.Now().UnixNano()
	last := s.lastOverload.Load()
	if last != 0 && now-last < int64(overloadLogInterval) {
		return
	}
	if !s.lastOverload.CompareAndSwap(last, now) {
		return // another goroutine logs this interval
	}
	s.log.Warn("socks: connection limit reached, closing new connections",
		"max_conns", s.cfg.MaxConns, "rejected_total", rejected)
}

// serveConn runs one client connection to its end.
func (s *Server) serveConn(cc *clientConn) {
	defer func() {
		cc.Close()
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		if s.connDone != nil {
			s.connDone()
		}
		s.wg.Done()
	}()
	// One deadline for greeting, auth and request together: a client that
	// trickles bytes cannot stretch it. handleConnect clears it.
	if err := cc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		s.log.Debug("socks: set handshake deadline", "remote", cc.RemoteAddr(), "err", err)
		return
	}
	err := s.socks.ServeConn(cc)
	if !cc.requested.Load() {
		s.handshakeFails.Add(1)
		if errors.Is(err, statute.ErrUserAuthFailed) {
			s.authFails.Add(1)
		}
		s.log.Debug("socks: handshake failed", "remote", cc.RemoteAddr(), "err", err)
	}
}

// Addr returns the address of the first listener, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Ready returns a channel closed once Serve has a listener, after which
// Addr is non-nil.
func (s *Server) Ready() <-chan struct{} { return s.ready }

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the listeners, cancels pending dials, closes every client and
// upstream connection and waits for all connection goroutines. It is
// idempotent; later calls wait for the same shutdown and return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	cs := make([]*clientConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()

	s.cancel()
	var errs []error
	for _, l := range ls {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, c := range cs {
		c.Close()
	}
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("socks: close: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.conns)
	s.mu.Unlock()
	st := Stats{
		Active:            active,
		Total:             s.total.Load(),
		Rejected:          s.rejected.Load(),
		HandshakeFailures: s.handshakeFails.Load(),
		AuthFailures:      s.authFails.Load(),
	}
	for i := range s.replies {
		st.Replies[i] = s.replies[i].Load()
	}
	return st
}

func (s *Server) countReply(code byte) {
	if int(code) < len(s.replies) {
		s.replies[code].Add(1)
	}
}

// clientConn is an accepted client connection. go-socks5 hands it back to
// our handlers as their io.Writer, which is how they find it.
type clientConn struct {
	net.Conn
	srv *Server
	// requested is set once a handler runs: the handshake is over.
	requested atomic.Bool

	mu       sync.Mutex
	closed   bool
	upstream net.Conn
}

// Write counts the replies go-socks5 sends on its own (7 for an unknown
// command, 8 for an unknown address type) before a handler runs. Method and
// RFC 1929 replies are 2 bytes; a SOCKS5 reply is at least 10, and
// go-socks5 writes each message with a single Write.
func (c *clientConn) Write(b []byte) (int, error) {
	if !c.requested.Load() && len(b) >= 10 && b[0] == statute.VersionSocks5 {
		c.srv.countReply(b[1])
	}
	return c.Conn.Write(b)
}

// beginRequest marks the handshake done and clears its deadline so a long
// transfer is not cut.
func (c *clientConn) beginRequest() error {
	c.requested.Store(true)
	return c.Conn.SetDeadline(time.Time{})
}

// setUpstream attaches up so Close also closes it; false if already closed.
func (c *clientConn) setUpstream(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.upstream = up
	return true
}

// Close closes the client connection and its upstream, if any.
func (c *clientConn) Close() error {
	c.mu.Lock()
	c.closed = true
	up := c.upstream
	c.mu.Unlock()
	err := c.Conn.Close()
	if up != nil {
		up.Close()
	}
	return err
}

// noResolve leaves names unresolved: they travel to the exit as names.
type noResolve struct{}

func (noResolve) Resolve(ctx context.Context, _ string) (context.Context, net.IP, error) {
	return ctx, nil, nil
}

// credStore checks RFC 1929 logins in constant time with respect to the
// password (comparing fixed-size hashes also hides its length).
type credStore map[string][sha256.Size]byte

func (c credStore) Valid(user, password, _ string) bool {
	want, ok := c[user]
	got := sha256.Sum256([]byte(password))
	eq := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	return ok && eq
}
