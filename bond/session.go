package bond

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Session is one reliable, ordered, bidirectional byte stream carried over
// a changing set of links. It implements net.Conn; see the package doc.
type Session struct {
	cfg      Config
	id       [16]byte
	isClient bool
	log      *slog.Logger
	epoch    time.Time // origin of ping tokens
	onDone   func()    // server bookkeeping; called once when the session ends

	done     chan struct{} // closed when the session ends (fail or Close)
	wg       sync.WaitGroup
	stats    sessionCounters
	closeOne sync.Once

	mu sync.Mutex // guards everything below
	// changed is closed and replaced when state that a waiter may be
	// waiting on changes, but only if someone took it (waiting).
	changed chan struct{}
	waiting bool

	// Send side. blocks hold [sndUna, sndWrite) in order.
	blocks   []*block
	sndUna   uint64 // the peer has every byte below this
	sndNxt   uint64 // first byte never sent
	sndWrite uint64 // end of what the application wrote
	sndLimit uint64 // the peer's receive window right edge
	// writersWaiting counts Writes blocked for room: the application has
	// more to send than is queued, which the scheduler counts as backlog.
	writersWaiting int
	retx           []span // sent on a lost or stalled link: to send again first
	finSent        bool   // CloseWrite called: FIN at sndWrite
	finAcked       bool   // the peer confirmed the FIN
	wdl            time.Time

	// Receive side.
	rcvNext    uint64    // next in-order byte expected
	rcvRead    uint64    // the application has read everything below this
	readable   [][]byte  // bytes [rcvRead, rcvNext) in order
	ooo        []segment // out-of-order bytes beyond rcvNext, by offset
	oooBytes   int
	advertised uint64 // window edge last told to the peer
	peerFin    bool
	peerFinOff uint64
	rdl        time.Time

	links        []*Link
	established  bool      // client: a link joined, later hellos resume
	allDownSince time.Time // zero while a link is up
	closing      bool      // Close started: no new links, GOAWAY on all
	err          error     // terminal: why the session ended
}

// block is a piece of written data. Once sent it is never modified: a
// link writer may still be writing it after it was acknowledged.
type block struct {
	off  uint64
	data []byte
}

// span is the byte range [off, end) of the stream.
type span struct{ off, end uint64 }

type segment struct {
	off  uint64
	data []byte
}

type sessionCounters struct {
	sendQueue    atomic.Int64
	reorderBytes atomic.Int64
	window       atomic.Int64
	dupBytes     atomic.Int64
	links        atomic.Pointer[[]*Link] // copy of s.links for Stats
}

// publishLinksLocked gives Stats a copy of the link list, so reading
// stats never takes the session lock.
func (s *Session) publishLinksLocked() {
	links := append([]*Link(nil), s.links...)
	s.stats.links.Store(&links)
}

// NewClient starts the client side of a new session. Add links with
// AddLink; the first one creates the session on the exit.
func NewClient(cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("bond: session id: %w", err)
	}
	return newSession(cfg, id, true), nil
}

func newSession(cfg Config, id [16]byte, isClient bool) *Session {
	s := &Session{
		cfg:          cfg,
		id:           id,
		isClient:     isClient,
		log:          cfg.logger().With("session", fmt.Sprintf("%x", id[:4])),
		epoch:        time.Now(),
		done:         make(chan struct{}),
		changed:      make(chan struct{}),
		sndLimit:     uint64(cfg.RecvWindow), // both ends share the default
		advertised:   uint64(cfg.RecvWindow),
		allDownSince: time.Now(),
	}
	s.stats.window.Store(int64(cfg.RecvWindow))
	s.wg.Add(1)
	go s.housekeep()
	return s
}

// ID returns the session's random identifier.
func (s *Session) ID() [16]byte { return s.id }

// Done is closed when the session has ended; Err tells why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// notifyLocked wakes every waiter. Called with s.mu held.
func (s *Session) notifyLocked() {
	if s.waiting {
		close(s.changed)
		s.changed = make(chan struct{})
		s.waiting = false
	}
}

// waitLocked releases s.mu until the state changes, the deadline passes
// (os.ErrDeadlineExceeded) or the session ends, then takes it again.
func (s *Session) waitLocked(deadline time.Time) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	s.waiting = true
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ch:
	case <-timeout:
	case <-s.done:
	}
	s.mu.Lock()
	return nil
}

// Write queues p for delivery, blocking while the send buffer is full.
func (s *Session) Write(p []byte) (int, error) {
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 {
		switch {
		case s.err != nil:
			return n, s.opError("write", s.err)
		case s.closing:
			return n, s.opError("write", ErrClosed)
		case s.finSent:
			return n, s.opError("write", ErrWriteClosed)
		}
		room := min(s.cfg.SendBuffer-int(s.sndWrite-s.sndUna), s.unsentCapLocked()-int(s.sndWrite-s.sndNxt))
		if room <= 0 {
			s.writersWaiting++
			err := s.waitLocked(s.wdl)
			s.writersWaiting--
			if err != nil {
				return n, s.opError("write", err)
			}
			continue
		}
		take := min(room, len(p))
		s.appendLocked(p[:take])
		p = p[take:]
		n += take
		s.notifyLocked()
	}
	return n, nil
}

// unsentCapLocked bounds the bytes written but not yet handed to any link.
// Links pull from this queue as fast as they drain, so it only needs to
// cover a few milliseconds of their summed rate; anything deeper is
// bufferbloat that a small request from another stream would wait behind.
func (s *Session) unsentCapLocked() int {
	var rate float64
	for _, l := range s.links {
		if !l.stalled {
			rate += l.rate.estimate()
		}
	}
	return max(min(int(rate*unsentQueueTime.Seconds()), s.cfg.SendBuffer), minUnsentQueue)
}

// The unsent queue holds unsentQueueTime of the links' summed rate, and at
// least minUnsentQueue bytes.
const (
	unsentQueueTime = 10 * time.Millisecond
	minUnsentQueue  = 128 << 10
)

// appendLocked copies p into blocks, topping up the last block while no
// byte of it was sent yet.
func (s *Session) appendLocked(p []byte) {
	for len(p) > 0 {
		if k := len(s.blocks); k > 0 {
			b := s.blocks[k-1]
			if b.off >= s.sndNxt && len(b.data) < cap(b.data) {
				c := min(cap(b.data)-len(b.data), len(p))
				b.data = append(b.data, p[:c]...)
				p = p[c:]
				s.sndWrite += uint64(c)
				continue
			}
		}
		c := min(s.cfg.ChunkSize, len(p))
		b := &block{off: s.sndWrite, data: make([]byte, c, s.cfg.ChunkSize)}
		copy(b.data, p[:c])
		s.blocks = append(s.blocks, b)
		s.sndWrite += uint64(c)
		p = p[c:]
	}
	s.stats.sendQueue.Store(int64(s.sndWrite - s.sndUna))
}

// Read reads stream bytes in order. It returns io.EOF after the peer's
// CloseWrite or Close once every byte before it was read.
func (s *Session) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if len(s.readable) > 0 {
			n := 0
			for n < len(p) && len(s.readable) > 0 {
				c := copy(p[n:], s.readable[0])
				n += c
				if c == len(s.readable[0]) {
					s.readable[0] = nil
					s.readable = s.readable[1:]
				} else {
					s.readable[0] = s.readable[0][c:]
				}
			}
			s.rcvRead += uint64(n)
			s.maybeOpenWindowLocked()
			return n, nil
		}
		if s.peerFin && s.rcvNext >= s.peerFinOff {
			return 0, io.EOF
		}
		if s.err != nil {
			if errors.Is(s.err, ErrPeerClosed) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, s.opError("read", s.err)
		}
		if err := s.waitLocked(s.rdl); err != nil {
			return 0, s.opError("read", err)
		}
	}
}

// maybeOpenWindowLocked tells the peer about room freed by reads once it
// is worth a frame: a quarter of the window.
func (s *Session) maybeOpenWindowLocked() {
	edge := s.rcvRead + uint64(s.cfg.RecvWindow)
	s.stats.window.Store(int64(edge - s.rcvNext))
	if edge-s.advertised < uint64(s.cfg.RecvWindow/4) {
		return
	}
	s.advertised = edge
	for _, l := range s.links {
		l.needAck = true
	}
	s.notifyLocked()
}

// receiveLocked takes DATA bytes [off, off+len(data)) from a link.
func (s *Session) receiveLocked(off uint64, data []byte) error {
	end := off + uint64(len(data))
	if end <= s.rcvNext {
		s.stats.dupBytes.Add(int64(len(data)))
		return nil
	}
	if end > s.rcvRead+uint64(s.cfg.RecvWindow) {
		return fmt.Errorf("%w: DATA [%d,%d) beyond the window edge %d", ErrProtocol, off, end, s.rcvRead+uint64(s.cfg.RecvWindow))
	}
	if s.peerFin && end > s.peerFinOff {
		return fmt.Errorf("%w: DATA past FIN", ErrProtocol)
	}
	if off < s.rcvNext {
		s.stats.dupBytes.Add(int64(s.rcvNext - off))
		data = data[s.rcvNext-off:]
		off = s.rcvNext
	}
	if off > s.rcvNext {
		i := sort.Search(len(s.ooo), func(i int) bool { return s.ooo[i].off >= off })
		if i < len(s.ooo) && s.ooo[i].off == off && len(s.ooo[i].data) >= len(data) {
			s.stats.dupBytes.Add(int64(len(data)))
			return nil
		}
		if s.oooBytes+len(data) > 2*s.cfg.RecvWindow {
			return nil // overlapping duplicates: drop; it will be sent again
		}
		s.ooo = append(s.ooo, segment{})
		copy(s.ooo[i+1:], s.ooo[i:])
		s.ooo[i] = segment{off, data}
		s.oooBytes += len(data)
		s.stats.reorderBytes.Store(int64(s.oooBytes))
		return nil
	}
	s.readable = append(s.readable, data)
	s.rcvNext = end
	for len(s.ooo) > 0 && s.ooo[0].off <= s.rcvNext {
		seg := s.ooo[0]
		s.ooo[0] = segment{}
		s.ooo = s.ooo[1:]
		s.oooBytes -= len(seg.data)
		if segEnd := seg.off + uint64(len(seg.data)); segEnd > s.rcvNext {
			s.readable = append(s.readable, seg.data[s.rcvNext-seg.off:])
			s.rcvNext = segEnd
		} else {
			s.stats.dupBytes.Add(int64(len(seg.data)))
		}
	}
	if len(s.ooo) == 0 {
		s.ooo = nil // let the backing array go
	}
	s.stats.reorderBytes.Store(int64(s.oooBytes))
	s.stats.window.Store(int64(s.rcvRead + uint64(s.cfg.RecvWindow) - s.rcvNext))
	s.notifyLocked()
	return nil
}

// ackLocked processes the peer's cumulative ack and window edge.
func (s *Session) ackLocked(rcvNext, limit uint64, finAcked bool) error {
	if rcvNext > s.sndNxt {
		return fmt.Errorf("%w: ack %d beyond sent %d", ErrProtocol, rcvNext, s.sndNxt)
	}
	if limit > s.sndLimit {
		s.sndLimit = limit
	}
	if finAcked && s.finSent {
		s.finAcked = true
	}
	if rcvNext > s.sndUna {
		s.sndUna = rcvNext
		i := 0
		for i < len(s.blocks) && s.blocks[i].off+uint64(len(s.blocks[i].data)) <= s.sndUna {
			s.blocks[i] = nil
			i++
		}
		s.blocks = s.blocks[i:]
		for len(s.retx) > 0 && s.retx[0].end <= s.sndUna {
			s.retx = s.retx[1:]
		}
		s.stats.sendQueue.Store(int64(s.sndWrite - s.sndUna))
	}
	s.notifyLocked()
	return nil
}

// CloseWrite sends FIN after the bytes written so far; the peer's reads
// end with io.EOF. Reads on this side go on.
func (s *Session) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.opError("closewrite", s.err)
	}
	if !s.finSent {
		s.finSent = true
		for _, l := range s.links {
			l.finDue = true
		}
		s.notifyLocked()
	}
	return nil
}

// Close ends the session: it sends FIN if CloseWrite was not called,
// waits up to Config.Linger for the peer to acknowledge every byte, then
// tells the peer (GOAWAY) and closes every link. It is idempotent and
// returns once all of the session's goroutines have ended.
func (s *Session) Close() error {
	s.closeOne.Do(func() {
		s.mu.Lock()
		if s.err == nil && !s.finSent {
			s.finSent = true
			for _, l := range s.links {
				l.finDue = true
			}
			s.notifyLocked()
		}
		deadline := time.Now().Add(s.cfg.Linger)
		for s.err == nil && !(s.finAcked && s.sndUna == s.sndWrite) && len(s.links) > 0 {
			if s.waitLocked(deadline) != nil {
				break
			}
		}
		s.closing = true
		for _, l := range s.links {
			l.goAwayDue = true
		}
		s.notifyLocked()
		// Give the writers a moment to put GOAWAY on the wire; a writer
		// stuck on a dead link is cut off by the close below.
		flushBy := time.Now().Add(min(s.cfg.Linger, time.Second))
		for s.err == nil && s.pendingGoAwayLocked() {
			if s.waitLocked(flushBy) != nil {
				break
			}
		}
		s.failLocked(ErrClosed)
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *Session) pendingGoAwayLocked() bool {
	for _, l := range s.links {
		if l.goAwayDue {
			return true
		}
	}
	return false
}

// failLocked ends the session with err (the first error wins) and cuts
// every link. Goroutines exit on their own; Close waits for them.
func (s *Session) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	if !errors.Is(err, ErrClosed) {
		s.log.Info("bond: session ended", "err", err)
	}
	for _, l := range s.links {
		l.dieLocked(err)
	}
	s.links = nil
	s.publishLinksLocked()
	close(s.done)
	s.notifyLocked()
	if s.onDone != nil {
		go s.onDone()
	}
}

func (s *Session) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "bond", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// housekeep runs the session's timers: heartbeats, stall and silence
// detection, the grace period.
func (s *Session) housekeep() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.tick())
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.checkLocked(now)
			s.mu.Unlock()
		}
	}
}

func (s *Session) checkLocked(now time.Time) {
	if s.err != nil {
		return
	}
	if len(s.links) == 0 {
		if now.Sub(s.allDownSince) >= s.cfg.Grace {
			s.failLocked(ErrNoLinks)
		}
		return
	}
	woke := false
	for _, l := range append([]*Link(nil), s.links...) {
		if now.Sub(l.lastHeard) >= s.cfg.LinkTimeout {
			s.log.Warn("bond: link silent, closing", "link", l.name, "silent", now.Sub(l.lastHeard).Round(time.Millisecond))
			s.dropLinkLocked(l, ErrLinkTimeout)
			continue
		}
		if now.Sub(l.lastPing) >= s.cfg.HeartbeatInterval {
			l.lastPing = now
			l.pingDue = true
			woke = true
		}
		if !l.stalled && len(l.inflight) > 0 && now.Sub(l.lastProgress) > l.stallTimeout(s.cfg.MinStallTimeout) {
			l.stalled = true
			l.stats.stalls.Add(1)
			l.stats.state.Store(int32(LinkStalled))
			moved := s.requeueLocked(l)
			s.log.Info("bond: link stalled, resending its data on the others", "link", l.name, "resend_bytes", moved)
			woke = true
		}
	}
	if woke {
		s.notifyLocked()
	}
}

// requeueLocked puts the link's unconfirmed bytes in the resend queue and
// returns how many.
func (s *Session) requeueLocked(l *Link) int {
	moved := 0
	for i := range l.inflight {
		c := &l.inflight[i]
		if c.requeued || c.end <= s.sndUna {
			continue
		}
		c.requeued = true
		sp := span{max(c.off, s.sndUna), c.end}
		s.addRetxLocked(sp)
		moved += int(sp.end - sp.off)
	}
	return moved
}

func (s *Session) addRetxLocked(sp span) {
	i := sort.Search(len(s.retx), func(i int) bool { return s.retx[i].off >= sp.off })
	s.retx = append(s.retx, span{})
	copy(s.retx[i+1:], s.retx[i:])
	s.retx[i] = sp
}

// dropLinkLocked removes a dead link and re-sends what it carried.
func (s *Session) dropLinkLocked(l *Link, err error) {
	i := -1
	for j, x := range s.links {
		if x == l {
			i = j
		}
	}
	if i < 0 {
		return
	}
	s.links = append(s.links[:i], s.links[i+1:]...)
	s.publishLinksLocked()
	s.requeueLocked(l)
	l.dieLocked(err)
	if len(s.links) == 0 {
		s.allDownSince = time.Now()
		s.log.Warn("bond: no link left, waiting for one to join", "grace", s.cfg.Grace)
	}
	s.notifyLocked()
}

// LocalAddr and RemoteAddr name the session, not any one link.
func (s *Session) LocalAddr() net.Addr  { return Addr(fmt.Sprintf("%x", s.id[:8])) }
func (s *Session) RemoteAddr() net.Addr { return Addr(fmt.Sprintf("%x", s.id[:8])) }

// SetDeadline sets both deadlines.
func (s *Session) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl, s.wdl = t, t
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// SetReadDeadline makes pending and future Reads fail with
// os.ErrDeadlineExceeded after t.
func (s *Session) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl = t
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// SetWriteDeadline makes pending and future Writes fail with
// os.ErrDeadlineExceeded after t.
func (s *Session) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.wdl = t
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// Addr is a session's address: its id in hex.
type Addr string

func (a Addr) Network() string { return "bond" }
func (a Addr) String() string  { return string(a) }

// AddLink joins conn to a client session: it sends the hello, waits for
// the exit's welcome (bounded by ctx and Config.HandshakeTimeout), then
// starts carrying data on it. The returned Link's Done channel closes
// when the link is lost, so the caller can redial. conn is closed on
// error and when the link ends.
func (s *Session) AddLink(ctx context.Context, conn net.Conn, opts LinkOptions) (*Link, error) {
	if !s.isClient {
		conn.Close()
		return nil, errors.New("bond: AddLink on an exit session; use Server.AddLink")
	}
	s.mu.Lock()
	hello := frame{typ: frameHello, version: Version, session: s.id, rcvNext: s.rcvNext}
	if !s.established {
		hello.flags = flagNew
	}
	s.mu.Unlock()
	stop := watchHandshake(ctx, conn, s.cfg.HandshakeTimeout)
	start := time.Now()
	_, err := conn.Write(appendFrame(nil, &hello))
	var w frame
	if err == nil {
		w, err = readFrame(conn, make([]byte, helloBody))
	}
	rtt := time.Since(start)
	if stopErr := stop(); err == nil {
		err = stopErr
	}
	if err == nil && w.typ != frameWelcome {
		err = fmt.Errorf("%w: %v instead of WELCOME", ErrProtocol, w.typ)
	}
	if err == nil {
		switch w.status {
		case statusOK:
		case statusBadVersion:
			err = fmt.Errorf("%w: exit speaks version %d", ErrVersion, w.version)
		case statusUnknownSession:
			err = ErrUnknownSession
		case statusBusy:
			err = ErrBusy
		default:
			err = fmt.Errorf("%w: welcome status %d", ErrProtocol, w.status)
		}
	}
	if err != nil {
		conn.Close()
		if errors.Is(err, ErrUnknownSession) {
			s.mu.Lock()
			s.failLocked(err)
			s.mu.Unlock()
		}
		return nil, fmt.Errorf("bond: join link %q: %w", opts.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.attachLocked(conn, opts, w.rcvNext, rtt)
	if err != nil {
		return nil, err
	}
	s.established = true
	return l, nil
}

// watchHandshake bounds a link's hello exchange by ctx and timeout. The
// returned stop clears the deadline and reports ctx's error if it fired.
func watchHandshake(ctx context.Context, conn net.Conn, timeout time.Duration) (stop func() error) {
	conn.SetDeadline(time.Now().Add(timeout))
	quit := make(chan struct{})
	fired := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			conn.SetDeadline(time.Unix(1, 0)) // wake the blocked read now
			close(fired)
		case <-quit:
		}
	}()
	return func() error {
		close(quit)
		conn.SetDeadline(time.Time{})
		select {
		case <-fired:
			return ctx.Err()
		default:
			return nil
		}
	}
}

// attachLocked makes conn a live link of the session. peerRcvNext is how
// far the peer has received, from the handshake.
func (s *Session) attachLocked(conn net.Conn, opts LinkOptions, peerRcvNext uint64, rtt time.Duration) (*Link, error) {
	if s.err != nil || s.closing {
		conn.Close()
		return nil, fmt.Errorf("bond: join link %q: %w", opts.Name, errors.Join(ErrClosed, s.err))
	}
	if len(s.links) >= s.cfg.MaxLinks {
		conn.Close()
		return nil, fmt.Errorf("bond: join link %q: %w", opts.Name, ErrTooManyLinks)
	}
	if peerRcvNext > s.sndNxt {
		conn.Close()
		err := fmt.Errorf("%w: peer claims %d bytes, only %d sent", ErrProtocol, peerRcvNext, s.sndNxt)
		s.failLocked(err)
		return nil, err
	}
	if err := s.ackLocked(peerRcvNext, 0, false); err != nil {
		conn.Close()
		return nil, err
	}
	setNotSentLowat(conn, s.cfg.NotSentLowat)
	l := newLink(s, conn, opts, rtt)
	l.lowat = s.cfg.NotSentLowat
	l.needAck = true
	l.finDue = s.finSent && !s.finAcked
	s.links = append(s.links, l)
	s.publishLinksLocked()
	s.allDownSince = time.Time{}
	s.log.Info("bond: link up", "link", l.name, "rtt", rtt.Round(time.Microsecond), "links", len(s.links))
	s.wg.Add(2)
	go l.readLoop()
	go l.writeLoop()
	s.notifyLocked()
	return l, nil
}
