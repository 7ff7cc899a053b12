package bond

import (
	"sort"
	"time"
)

// The scheduler. A link's writer asks for work only when its socket took
// the previous chunk (TCP_NOTSENT_LOWAT keeps the kernel queue short), so
// every link pulls at the pace it really drains. What it gets is decided
// here: resends first, then new bytes, and only if this link is expected
// to deliver them no later than the other links could (the earliest
// completion first rule of ECF, Lim et al. 2017). A slow link thus never
// holds a byte a fast link would have landed sooner, yet in bulk transfers
// every link is kept busy, because the fast links cannot drain the whole
// backlog before the slow one delivers its chunk.

// pickLocked returns the next chunk link l should send, and records it as
// in flight on l; nil when l should wait.
func (s *Session) pickLocked(l *Link) ([]byte, uint64) {
	if l.stalled || s.closing || !s.eligibleLocked(l) {
		return nil, 0
	}
	var sp span
	resend := false
	for len(s.retx) > 0 {
		sp = s.retx[0]
		sp.off = max(sp.off, s.sndUna)
		if sp.off < sp.end {
			resend = true
			break
		}
		s.retx = s.retx[1:]
	}
	if !resend {
		if s.sndNxt >= s.sndWrite || s.sndNxt >= s.sndLimit {
			return nil, 0 // nothing to send, or the peer's window is full
		}
		sp = span{s.sndNxt, min(s.sndWrite, s.sndLimit, s.sndNxt+uint64(s.cfg.ChunkSize))}
	}
	b := s.blockAt(sp.off)
	if bEnd := b.off + uint64(len(b.data)); sp.end > bEnd {
		sp.end = bEnd
	}
	sp.end = min(sp.end, sp.off+uint64(s.cfg.ChunkSize))
	size := int(sp.end - sp.off)
	if !s.shouldSendLocked(l, size) {
		return nil, 0
	}
	if resend {
		s.retx[0].off = sp.end
		if s.retx[0].off >= s.retx[0].end {
			s.retx = s.retx[1:]
		}
		l.stats.bytesResent.Add(int64(size))
	} else {
		s.sndNxt = sp.end
	}
	now := time.Now()
	if l.inflightB == 0 {
		l.lastProgress = now
	}
	// A rate sample measures from the later of the last delivery and the
	// start of the current flight (BBR's first_sent_time): a link used
	// now and then must not look slow for the time it sat unused.
	from := now
	if len(l.inflight) > 0 {
		from = l.deliveredAt
		if first := l.inflight[0].sentAt; first.After(from) {
			from = first
		}
	}
	l.sent += uint64(size)
	l.inflight = append(l.inflight, sentChunk{
		off: sp.off, end: sp.end, linkEnd: l.sent, sentAt: now,
		delivered: l.delivered, deliveredAt: from,
	})
	c := &l.inflight[len(l.inflight)-1]
	c.appLimited = s.sndNxt >= s.sndWrite && len(s.retx) == 0
	l.inflightB += size
	l.stats.bytesSent.Add(int64(size))
	l.stats.inflight.Store(int64(l.inflightB))
	return b.data[sp.off-b.off : sp.end-b.off], sp.off
}

// blockAt returns the block holding stream offset off (sndUna <= off <
// sndWrite).
func (s *Session) blockAt(off uint64) *block {
	i := sort.Search(len(s.blocks), func(i int) bool {
		return s.blocks[i].off+uint64(len(s.blocks[i].data)) > off
	})
	return s.blocks[i]
}

// eligibleLocked: backup links carry data only while no primary link is
// healthy.
func (s *Session) eligibleLocked(l *Link) bool {
	if !l.backup {
		return true
	}
	for _, x := range s.links {
		if !x.backup && !x.stalled && !x.dead {
			return false
		}
	}
	return true
}

// deliveryEstimate is when a chunk of size bytes sent on l now would reach
// the peer, in seconds from now: behind what l already carries, at its
// measured rate, plus half its minimum RTT.
func (l *Link) deliveryEstimate(size int) float64 {
	rate := l.rate.estimate()
	if time.Since(l.rate.start) > rateStale {
		// No sample for a while: the link may be faster than it last
		// looked. Assume at least the initial rate so it gets a chunk
		// now and then, which measures it again.
		rate = max(rate, initialRate)
	}
	oneWay := l.rtt.min.Seconds() / 2
	drain := float64(l.inflightB+size) / rate
	// inflight includes bytes already travelling, which land within one
	// RTT; never promise less than an idle link could do.
	return max(oneWay+float64(size)/rate, drain-oneWay)
}

// shouldSendLocked applies the ECF rule: l takes the chunk unless a faster
// link would deliver it sooner AND could also deliver the whole unsent
// backlog before l delivers this chunk.
func (s *Session) shouldSendLocked(l *Link, size int) bool {
	var best *Link
	bestT := 0.0
	for _, x := range s.links {
		if x == l || x.stalled || x.dead || !s.eligibleLocked(x) {
			continue
		}
		if t := x.deliveryEstimate(size); best == nil || t < bestT {
			best, bestT = x, t
		}
	}
	if best == nil {
		return true
	}
	mine := l.deliveryEstimate(size)
	if mine <= bestT {
		return true
	}
	backlog := s.retxBytesLocked()
	if sendable := min(s.sndWrite, s.sndLimit); sendable > s.sndNxt {
		backlog += int(sendable - s.sndNxt)
	}
	if s.writersWaiting > 0 && s.sndWrite < s.sndLimit {
		// The application is blocked on the unsent queue's bound: there
		// is more to come than is queued, so count on a full send buffer.
		backlog = max(backlog, s.cfg.SendBuffer)
	}
	return best.deliveryEstimate(max(backlog, size)) > mine
}

func (s *Session) retxBytesLocked() int {
	n := 0
	for _, sp := range s.retx {
		if sp.end > s.sndUna {
			n += int(sp.end - max(sp.off, s.sndUna))
		}
	}
	return n
}
