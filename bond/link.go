package bond

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Link is one transport connection of a session. A link has exactly one
// reader and one writer goroutine; all mutable fields below stats are
// guarded by the session's mutex.
type Link struct {
	s      *Session
	conn   net.Conn
	name   string
	backup bool
	done   chan struct{} // closed when the link is dead
	stats  linkCounters  // atomics: read by Stats without the session lock

	err  error // why the link died; set before done closes
	dead bool

	// Control frames owed to the peer.
	needAck   bool
	pingDue   bool
	pongs     []uint64
	finDue    bool
	goAwayDue bool

	// Scheduling and estimation.
	inflight     []sentChunk // sent here, not yet confirmed received
	inflightB    int         // bytes in inflight not requeued
	sent         uint64      // DATA payload bytes written to this link
	delivered    uint64      // of those, confirmed by the peer (linkRecv)
	deliveredAt  time.Time   // when delivered last grew
	lastProgress time.Time   // last delivery progress, or first send after idle
	lastHeard    time.Time   // any frame received
	lastPing     time.Time
	stalled      bool
	rtt          rttEstimator
	rate         rateEstimator

	recvOnLink uint64 // DATA payload bytes received here (echoed in ACK)
	lowat      int    // TCP_NOTSENT_LOWAT set on the socket now
}

// sentChunk records stream bytes [off, end) written to a link.
type sentChunk struct {
	off, end    uint64
	linkEnd     uint64    // l.sent after this chunk
	sentAt      time.Time // when the writer took it
	delivered   uint64    // l.delivered when it was sent
	deliveredAt time.Time // l.deliveredAt when it was sent
	requeued    bool      // already handed to the resend queue
	appLimited  bool      // nothing else was waiting: the link was not pushed
}

type linkCounters struct {
	state       atomic.Int32
	bytesSent   atomic.Int64
	bytesAcked  atomic.Int64
	bytesResent atomic.Int64
	bytesRecv   atomic.Int64
	stalls      atomic.Int64
	srttNanos   atomic.Int64
	rateBps     atomic.Int64
	inflight    atomic.Int64
}

func newLink(s *Session, conn net.Conn, opts LinkOptions, rtt time.Duration) *Link {
	now := time.Now()
	name := opts.Name
	if name == "" {
		name = conn.RemoteAddr().String()
	}
	l := &Link{
		s: s, conn: conn, name: name, backup: opts.Backup,
		done:      make(chan struct{}),
		lastHeard: now, lastPing: now, lastProgress: now, deliveredAt: now,
	}
	l.rtt.sample(rtt)
	l.stats.srttNanos.Store(int64(l.rtt.srtt))
	l.stats.state.Store(int32(LinkUp))
	return l
}

// Name returns the link's label.
func (l *Link) Name() string { return l.name }

// Done is closed when the link is dead; Err says why.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err returns why the link died, or nil while it is alive.
func (l *Link) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Close drops the link from its session; its unconfirmed data is resent
// on the others.
func (l *Link) Close() error {
	l.s.mu.Lock()
	l.s.dropLinkLocked(l, ErrClosed)
	l.s.mu.Unlock()
	return nil
}

// dieLocked marks the link dead and cuts its connection so both of its
// goroutines return. The caller removes it from s.links.
func (l *Link) dieLocked(err error) {
	if l.dead {
		return
	}
	l.dead = true
	l.err = err
	l.stats.state.Store(int32(LinkDown))
	closeHard(l.conn)
	close(l.done)
}

// closeHard closes conn without a TLS close_notify, which could block on a
// link that no longer drains.
func closeHard(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		nc.NetConn().Close()
	}
	c.Close()
}

// tuneLowat sizes the kernel's unsent queue to a few milliseconds of the
// link's rate: enough to keep it busy between writer wake-ups, little
// enough that a chunk on a slow link does not wait behind a deep queue and
// hold up every later byte at the receiver.
func (l *Link) tuneLowat() {
	ceiling := l.s.cfg.NotSentLowat
	if ceiling <= 0 {
		return
	}
	want := min(max(int(l.rate.estimate()*lowatTime.Seconds()), minLowat), ceiling)
	if want*2 < l.lowat*3 && want*3 > l.lowat*2 {
		return // within 1.5× of the current setting
	}
	l.lowat = want
	setNotSentLowat(l.conn, want)
}

// The kernel's unsent queue holds lowatTime of a link's rate, at least
// minLowat bytes and at most Config.NotSentLowat.
const (
	lowatTime = 8 * time.Millisecond
	minLowat  = 32 << 10
)

// stallTimeout is max(floor, srtt + 4·rttvar).
func (l *Link) stallTimeout(floor time.Duration) time.Duration {
	return max(floor, l.rtt.srtt+4*l.rtt.rttvar)
}

func (l *Link) readLoop() {
	s := l.s
	defer s.wg.Done()
	br := bufio.NewReaderSize(l.conn, 64<<10)
	scratch := make([]byte, helloBody)
	for {
		f, err := readFrame(br, scratch)
		if err != nil {
			s.mu.Lock()
			if !l.dead {
				if errors.Is(err, ErrProtocol) {
					s.log.Warn("bond: bad frame, dropping link", "link", l.name, "err", err)
				} else if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				s.dropLinkLocked(l, fmt.Errorf("bond: link %q read: %w", l.name, err))
			}
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		if l.dead {
			s.mu.Unlock()
			return
		}
		now := time.Now()
		l.lastHeard = now
		if err := l.handleLocked(&f, now); err != nil {
			s.log.Warn("bond: peer broke the protocol", "link", l.name, "err", err)
			s.failLocked(err)
		}
		s.mu.Unlock()
	}
}

func (l *Link) handleLocked(f *frame, now time.Time) error {
	s := l.s
	switch f.typ {
	case frameData:
		n := len(f.payload)
		l.recvOnLink += uint64(n)
		l.stats.bytesRecv.Add(int64(n))
		l.needAck = true
		s.notifyLocked()
		return s.receiveLocked(f.offset, f.payload)
	case frameAck:
		if err := l.deliveredLocked(f.linkRecv, now); err != nil {
			return err
		}
		return s.ackLocked(f.rcvNext, f.limit, f.flags&flagFinAcked != 0)
	case framePing:
		l.pongs = append(l.pongs, f.token)
		s.notifyLocked()
	case framePong:
		sent := s.epoch.Add(time.Duration(f.token))
		if d := now.Sub(sent); d >= 0 && d < time.Minute {
			l.rtt.sample(d)
			l.stats.srttNanos.Store(int64(l.rtt.srtt))
		}
	case frameFin:
		if s.peerFin && s.peerFinOff != f.offset {
			return fmt.Errorf("%w: FIN moved from %d to %d", ErrProtocol, s.peerFinOff, f.offset)
		}
		if f.offset < s.rcvNext {
			return fmt.Errorf("%w: FIN at %d before received %d", ErrProtocol, f.offset, s.rcvNext)
		}
		s.peerFin, s.peerFinOff = true, f.offset
		for _, x := range s.links {
			x.needAck = true
		}
		s.notifyLocked()
	case frameGoAway:
		s.failLocked(ErrPeerClosed)
	default:
		return fmt.Errorf("%w: %v on a running link", ErrProtocol, f.typ)
	}
	return nil
}

// deliveredLocked takes the peer's count of DATA bytes received on this
// link: it confirms chunks, feeds the rate estimator and clears a stall.
func (l *Link) deliveredLocked(linkRecv uint64, now time.Time) error {
	if linkRecv > l.sent {
		return fmt.Errorf("%w: link %q: peer got %d bytes, %d sent", ErrProtocol, l.name, linkRecv, l.sent)
	}
	if linkRecv <= l.delivered {
		return nil
	}
	var last *sentChunk
	i := 0
	for i < len(l.inflight) && l.inflight[i].linkEnd <= linkRecv {
		last = &l.inflight[i]
		if !last.requeued {
			l.inflightB -= int(last.end - last.off)
		}
		i++
	}
	if last != nil {
		interval := now.Sub(last.deliveredAt)
		if d := now.Sub(last.sentAt); d > interval {
			interval = d
		}
		bps := float64(linkRecv-last.delivered) / interval.Seconds()
		// A sample taken while the application had nothing more to send
		// shows what was offered, not what the link can carry: it may
		// raise the estimate, never lower it (as in BBR).
		// So is one spanning less than a chunk: too short to measure.
		full := linkRecv-last.delivered >= uint64(l.s.cfg.ChunkSize)
		if (!last.appLimited && full) || bps > l.rate.estimate() {
			l.rate.sample(bps, now)
			l.tuneLowat()
		}
		l.stats.rateBps.Store(int64(l.rate.estimate()))
	}
	clear(l.inflight[:i])
	l.inflight = l.inflight[i:]
	if len(l.inflight) == 0 {
		l.inflight = nil
	}
	l.stats.bytesAcked.Add(int64(linkRecv - l.delivered))
	l.stats.inflight.Store(int64(l.inflightB))
	l.delivered, l.deliveredAt, l.lastProgress = linkRecv, now, now
	if l.stalled {
		l.stalled = false
		l.stats.state.Store(int32(LinkUp))
		l.s.log.Info("bond: link recovered", "link", l.name)
	}
	return nil
}

// writeLoop sends what the link owes: control frames first, then the
// chunk the scheduler gives it. It blocks in Write while the socket is
// full, which is how a link pulls only as much as it can carry.
func (l *Link) writeLoop() {
	s := l.s
	defer s.wg.Done()
	bw := bufio.NewWriterSize(l.conn, 64<<10)
	var ctl []byte
	for {
		ctl = ctl[:0]
		var data []byte
		var dataOff uint64
		goAway := false
		s.mu.Lock()
		for {
			if l.dead {
				s.mu.Unlock()
				return
			}
			ctl, goAway = l.controlLocked(ctl)
			if !goAway {
				data, dataOff = s.pickLocked(l)
			}
			if len(ctl) > 0 || data != nil {
				break
			}
			s.waitLocked(time.Time{})
		}
		s.mu.Unlock()
		var err error
		if len(ctl) > 0 {
			_, err = bw.Write(ctl)
		}
		if err == nil && data != nil {
			var h [headerSize + 8]byte
			if _, err = bw.Write(appendDataHeader(h[:0], dataOff, len(data))); err == nil {
				_, err = bw.Write(data)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		s.mu.Lock()
		if goAway {
			l.goAwayDue = false
			s.notifyLocked()
		}
		if err != nil {
			if !l.dead {
				s.dropLinkLocked(l, fmt.Errorf("bond: link %q write: %w", l.name, err))
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// controlLocked appends the control frames the link owes. goAway reports
// that GOAWAY is among them: nothing else goes after it.
func (l *Link) controlLocked(b []byte) (_ []byte, goAway bool) {
	s := l.s
	if l.needAck {
		l.needAck = false
		f := frame{typ: frameAck, rcvNext: s.rcvNext, limit: s.rcvRead + uint64(s.cfg.RecvWindow), linkRecv: l.recvOnLink}
		if s.peerFin && s.rcvNext >= s.peerFinOff {
			f.flags = flagFinAcked
		}
		s.advertised = max(s.advertised, f.limit)
		b = appendFrame(b, &f)
	}
	for _, tok := range l.pongs {
		b = appendFrame(b, &frame{typ: framePong, token: tok})
	}
	l.pongs = l.pongs[:0]
	if l.pingDue {
		l.pingDue = false
		b = appendFrame(b, &frame{typ: framePing, token: uint64(time.Since(s.epoch))})
	}
	if l.finDue && s.sndNxt == s.sndWrite && len(s.retx) == 0 {
		// FIN after the last byte was sent once, so a receiver never
		// sees FIN with a gap it would have to wait on for long.
		l.finDue = false
		b = appendFrame(b, &frame{typ: frameFin, offset: s.sndWrite})
	}
	if l.goAwayDue {
		b = appendFrame(b, &frame{typ: frameGoAway})
		return b, true
	}
	return b, false
}

// rttEstimator is RFC 6298's smoothed RTT and variation, plus the minimum.
type rttEstimator struct {
	srtt, rttvar, min time.Duration
}

func (e *rttEstimator) sample(d time.Duration) {
	if d <= 0 {
		d = time.Microsecond
	}
	if e.srtt == 0 {
		e.srtt, e.rttvar, e.min = d, d/2, d
		return
	}
	diff := e.srtt - d
	if diff < 0 {
		diff = -diff
	}
	e.rttvar = (3*e.rttvar + diff) / 4
	e.srtt = (7*e.srtt + d) / 8
	e.min = min(e.min, d)
}

// rateEstimator keeps the maximum delivery-rate sample over two windows
// (like BBR's bandwidth filter), so one application-limited sample does
// not make a fast link look slow.
type rateEstimator struct {
	cur, prev float64   // bytes/s maxima of this and the last window
	start     time.Time // start of the current window
}

// rateWindow is how long one window of samples lasts.
const rateWindow = 500 * time.Millisecond

// rateStale is how long without a rate sample before a link is probed
// again at no less than initialRate.
const rateStale = 2 * time.Second

// initialRate is assumed before a link's first sample: modest, so a new
// link is tried without being trusted with much.
const initialRate = 1 << 20

func (e *rateEstimator) sample(bps float64, now time.Time) {
	if now.Sub(e.start) >= rateWindow {
		if e.cur > 0 {
			e.prev = e.cur
		}
		e.cur, e.start = 0, now
	}
	e.cur = max(e.cur, bps)
}

func (e *rateEstimator) estimate() float64 {
	if r := max(e.cur, e.prev); r > 0 {
		return r
	}
	return initialRate
}
