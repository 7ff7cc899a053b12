package bond

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Server is the exit side: it takes authenticated links, joins each to the
// session its hello names (creating the session on a client's first
// link), and hands new sessions out through Accept.
type Server struct {
	cfg    Config
	accept chan *Session
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	sessions map[[16]byte]*Session // guarded by mu
}

// NewServer returns a Server whose sessions use cfg.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{
		cfg:      cfg,
		accept:   make(chan *Session, 64),
		done:     make(chan struct{}),
		sessions: make(map[[16]byte]*Session),
	}, nil
}

// AddLink reads conn's hello (bounded by ctx and Config.HandshakeTimeout)
// and joins it to its session. conn is closed on error and when the link
// ends.
func (srv *Server) AddLink(ctx context.Context, conn net.Conn, opts LinkOptions) (*Link, error) {
	stop := watchHandshake(ctx, conn, srv.cfg.HandshakeTimeout)
	start := time.Now()
	h, err := readFrame(conn, make([]byte, helloBody))
	if stopErr := stop(); err == nil {
		err = stopErr
	}
	if err == nil && h.typ != frameHello {
		err = fmt.Errorf("%w: %v instead of HELLO", ErrProtocol, h.typ)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bond: link hello: %w", err)
	}
	reject := func(status uint8, err error) (*Link, error) {
		conn.SetWriteDeadline(time.Now().Add(srv.cfg.HandshakeTimeout))
		conn.Write(appendFrame(nil, &frame{typ: frameWelcome, version: Version, status: status}))
		conn.Close()
		return nil, fmt.Errorf("bond: link hello: %w", err)
	}
	if h.version != Version {
		return reject(statusBadVersion, fmt.Errorf("%w: %d", ErrVersion, h.version))
	}
	s, status, err := srv.session(h.session, h.flags&flagNew != 0)
	if err != nil {
		return reject(status, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closing {
		return reject(statusUnknownSession, ErrUnknownSession)
	}
	if h.rcvNext > s.sndNxt {
		return reject(statusUnknownSession, fmt.Errorf("%w: peer claims %d bytes, only %d sent", ErrProtocol, h.rcvNext, s.sndNxt))
	}
	// The welcome is written under the session lock so no frame of this
	// link can precede it.
	conn.SetWriteDeadline(time.Now().Add(srv.cfg.HandshakeTimeout))
	_, err = conn.Write(appendFrame(nil, &frame{typ: frameWelcome, version: Version, status: statusOK, rcvNext: s.rcvNext}))
	conn.SetWriteDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bond: link welcome: %w", err)
	}
	return s.attachLocked(conn, opts, h.rcvNext, time.Since(start))
}

// session finds or creates the session id.
func (srv *Server) session(id [16]byte, create bool) (*Session, uint8, error) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	select {
	case <-srv.done:
		return nil, statusBusy, ErrClosed
	default:
	}
	if s, ok := srv.sessions[id]; ok {
		return s, statusOK, nil
	}
	if !create {
		return nil, statusUnknownSession, ErrUnknownSession
	}
	if len(srv.sessions) >= srv.cfg.MaxSessions {
		return nil, statusBusy, ErrBusy
	}
	s := newSession(srv.cfg, id, false)
	select {
	case srv.accept <- s:
	default:
		s.Close()
		return nil, statusBusy, fmt.Errorf("%w: accept backlog full", ErrBusy)
	}
	srv.sessions[id] = s
	s.onDone = func() {
		srv.mu.Lock()
		if srv.sessions[id] == s {
			delete(srv.sessions, id)
		}
		srv.mu.Unlock()
	}
	return s, statusOK, nil
}

// Accept returns the next new session.
func (srv *Server) Accept() (*Session, error) {
	select {
	case s := <-srv.accept:
		return s, nil
	case <-srv.done:
		return nil, ErrClosed
	}
}

// Sessions returns the sessions alive now.
func (srv *Server) Sessions() []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// Close ends every session at once (no linger) and stops Accept. It is
// idempotent and returns after the sessions' goroutines have ended.
func (srv *Server) Close() error {
	srv.once.Do(func() { close(srv.done) })
	var all []*Session
	srv.mu.Lock()
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for {
		select {
		case s := <-srv.accept:
			all = append(all, s)
			continue
		default:
		}
		break
	}
	for _, s := range all {
		s.abort(ErrClosed)
	}
	return nil
}

// abort ends the session at once, without linger or GOAWAY, and waits for
// its goroutines.
func (s *Session) abort(err error) {
	s.mu.Lock()
	s.failLocked(err)
	s.mu.Unlock()
	s.closeOne.Do(func() {})
	s.wg.Wait()
}

var _ net.Conn = (*Session)(nil)
