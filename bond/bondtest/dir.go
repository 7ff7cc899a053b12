package bondtest

import (
	"io"
	"os"
	"sync"
	"time"
)

// segment is one scheduled piece of a Write. Times are link time (see
// dir.linkNow). A FIN is a segment with no payload.
type segment struct {
	buf       []byte
	pb        *[]byte // buf's pool entry, if it came from bufPool
	off       int     // buf[off:] is not read yet
	fin       bool
	seq       uint64
	txStart   time.Duration
	txEnd     time.Duration
	deliverAt time.Duration
}

// bufPool recycles full-size segment buffers: bulk transfers would
// otherwise allocate one per 16 KiB.
var bufPool = sync.Pool{New: func() any { b := make([]byte, SegmentSize); return &b }}

// dir is one direction of a link: the writer end's send queue, the wire
// and the reader end's receive buffer. One mutex guards it all; no method
// ever holds two dirs' locks.
type dir struct {
	mu sync.Mutex

	cfg     LinkConfig
	rate    int64
	queue   int64 // effective QueueBytes
	recvBuf int64 // effective RecvBuffer

	// Link time is real time minus the time spent frozen (blocked or
	// blackholed): now - epoch while running, frozenAt while frozen.
	// Freezing the clock stops transmission and delivery without touching
	// the schedule, so Unblock resumes exactly where Block stopped.
	epoch         time.Time
	frozen        bool
	frozenAt      time.Duration
	frozenBacklog int64 // untransmitted bytes while frozen
	blocked       bool
	holed         bool
	blockSeq      uint64 // segments from this seq on were written while blocked
	nextSeq       uint64

	segs      []segment // segs[head:] are written and not fully read, in order
	head      int
	lastTxEnd time.Duration
	unread    int64 // payload bytes in segs[head:]

	wErr       error // non-nil once the writer end shut its side
	rClosed    bool  // the reader end was closed
	peerGone   bool  // writes fail because the reader end was closed
	linkClosed bool
	writing    bool // a Write holds the writer ticket
	recvWait   bool // a writer waits for the reader to make room

	rDeadline time.Time
	wDeadline time.Time
	readWake  chan struct{} // closed to wake waiting readers
	writeWake chan struct{} // closed to wake waiting writers

	written, read, dropped int64
}

func newDir(cfg LinkConfig, now time.Time) *dir {
	return &dir{
		cfg:     cfg,
		rate:    cfg.Rate,
		queue:   cfg.queueBytes(),
		recvBuf: cfg.recvBuffer(cfg.Rate),
		epoch:   now,
	}
}

func (d *dir) linkNow(now time.Time) time.Duration {
	if d.frozen {
		return d.frozenAt
	}
	return now.Sub(d.epoch)
}

// visible reports whether s has reached the reader by link time lt.
// Segments written during a Block stay invisible even if their schedule
// says otherwise (unlimited rate and no delay), because nothing moves.
func (d *dir) visible(s *segment, lt time.Duration) bool {
	return s.deliverAt <= lt && !(d.blocked && s.seq >= d.blockSeq)
}

func (d *dir) wakeReaders() {
	if d.readWake != nil {
		close(d.readWake)
		d.readWake = nil
	}
}

func (d *dir) wakeWriters() {
	if d.writeWake != nil {
		close(d.writeWake)
		d.writeWake = nil
	}
}

func (d *dir) readCh() chan struct{} {
	if d.readWake == nil {
		d.readWake = make(chan struct{})
	}
	return d.readWake
}

func (d *dir) writeCh() chan struct{} {
	if d.writeWake == nil {
		d.writeWake = make(chan struct{})
	}
	return d.writeWake
}

// wait drops d.mu until ch is closed, link time reaches until (if timed
// and the clock runs) or deadline passes, then takes d.mu again. Every
// state change that could end a wait (data, room, Unblock, any close, a
// new deadline or rate) closes ch, so this one select also watches for
// Close. The caller re-checks its condition; *t is reused across waits.
func (d *dir) wait(ch chan struct{}, now time.Time, until time.Duration, timed bool, deadline time.Time, t **time.Timer) {
	dur := time.Duration(-1)
	if timed && !d.frozen {
		dur = max(0, until-now.Sub(d.epoch))
	}
	if !deadline.IsZero() {
		if dd := max(0, deadline.Sub(now)); dur < 0 || dd < dur {
			dur = dd
		}
	}
	d.mu.Unlock()
	if dur < 0 {
		<-ch
	} else {
		if *t == nil {
			*t = time.NewTimer(dur)
		} else {
			(*t).Reset(dur)
		}
		select {
		case <-ch:
		case <-(*t).C:
		}
		(*t).Stop()
	}
	d.mu.Lock()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// readInto implements Conn.Read for the receiving end of d.
func (d *dir) readInto(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var t *time.Timer
	defer func() { stopTimer(t) }()
	for {
		if d.rClosed {
			return 0, ErrClosed
		}
		if d.linkClosed {
			return 0, ErrLinkClosed
		}
		now := time.Now()
		if !d.rDeadline.IsZero() && !now.Before(d.rDeadline) {
			return 0, os.ErrDeadlineExceeded
		}
		if len(p) == 0 {
			return 0, nil
		}
		lt := d.linkNow(now)
		n, eof := d.take(p, lt)
		if n > 0 {
			return n, nil
		}
		if eof {
			return 0, io.EOF
		}
		var until time.Duration
		timed := d.head < len(d.segs)
		if timed {
			until = d.segs[d.head].deliverAt
		}
		d.wait(d.readCh(), now, until, timed, d.rDeadline, &t)
	}
}

// take copies visible payload into p. eof reports a visible FIN at the
// head; the FIN stays queued so every later Read sees it too.
func (d *dir) take(p []byte, lt time.Duration) (n int, eof bool) {
	for n < len(p) && d.head < len(d.segs) {
		s := &d.segs[d.head]
		if !d.visible(s, lt) {
			break
		}
		if s.fin {
			eof = true
			break
		}
		c := copy(p[n:], s.buf[s.off:])
		s.off += c
		n += c
		if s.off == len(s.buf) {
			d.popHead()
		}
	}
	if n > 0 {
		d.unread -= int64(n)
		d.read += int64(n)
		if d.recvWait {
			d.recvWait = false
			d.wakeWriters()
		}
	}
	return n, eof
}

func (d *dir) popHead() {
	s := &d.segs[d.head]
	if s.pb != nil {
		bufPool.Put(s.pb)
	}
	*s = segment{}
	d.head++
	switch {
	case d.head == len(d.segs):
		d.segs, d.head = d.segs[:0], 0
	case d.head >= 64 && 2*d.head >= len(d.segs):
		n := copy(d.segs, d.segs[d.head:])
		clear(d.segs[n:])
		d.segs, d.head = d.segs[:n], 0
	}
}

// dropFrom discards segs[i:] as lost.
func (d *dir) dropFrom(i int) {
	for k := i; k < len(d.segs); k++ {
		s := &d.segs[k]
		lost := int64(len(s.buf) - s.off)
		d.dropped += lost
		d.unread -= lost
		if s.pb != nil {
			bufPool.Put(s.pb)
		}
		*s = segment{}
	}
	d.segs = d.segs[:i]
	if d.head >= len(d.segs) {
		d.segs, d.head = d.segs[:0], 0
	}
}

// writeErr is why a write cannot proceed now, if any.
func (d *dir) writeErr(now time.Time) error {
	switch {
	case d.wErr != nil:
		return d.wErr
	case d.linkClosed:
		return ErrLinkClosed
	case d.peerGone:
		return ErrPeerClosed
	case !d.wDeadline.IsZero() && !now.Before(d.wDeadline):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// write implements Conn.Write for the sending end of d.
func (d *dir) write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var t *time.Timer
	defer func() { stopTimer(t) }()
	n, ticket := 0, false
	defer func() {
		if ticket {
			d.writing = false
			d.wakeWriters()
		}
	}()
	for {
		now := time.Now()
		if err := d.writeErr(now); err != nil {
			return n, err
		}
		if !ticket {
			// One Write at a time, so concurrent Writes never interleave,
			// as on a real socket.
			if d.writing {
				d.wait(d.writeCh(), now, 0, false, d.wDeadline, &t)
				continue
			}
			d.writing, ticket = true, true
		}
		if len(p) == 0 {
			return n, nil
		}
		need := min(int64(len(p)), SegmentSize, d.queue, d.recvBuf)
		lt := d.linkNow(now)
		ok, timed := true, false
		var readyAt time.Duration
		switch {
		case d.frozen:
			ok = d.frozenBacklog+need <= d.queue
		case d.rate > 0:
			// Untransmitted bytes are (lastTxEnd-lt)*rate; there is room
			// for need once that is at most queue-need.
			readyAt = d.lastTxEnd - txDur(d.queue-need, d.rate)
			if lt < readyAt {
				ok, timed = false, true
			}
		}
		if !d.holed && d.unread+need > d.recvBuf {
			ok = false
			d.recvWait = true
		}
		if ok {
			d.pushSeg(p[:need], false, lt)
			p = p[need:]
			n += int(need)
			continue
		}
		d.wait(d.writeCh(), now, readyAt, timed, d.wDeadline, &t)
	}
}

// pushSeg schedules one segment, or a FIN, behind everything written
// before it; while frozen it counts towards the queue, while blackholed or
// with nobody left to read it is lost.
func (d *dir) pushSeg(data []byte, fin bool, lt time.Duration) {
	n := int64(len(data))
	txStart := max(lt, d.lastTxEnd)
	txEnd := txStart + txDur(n, d.rate)
	d.lastTxEnd = txEnd
	d.written += n
	if d.frozen {
		d.frozenBacklog += n
	}
	if d.holed || d.rClosed || d.linkClosed {
		d.dropped += n
		return
	}
	s := segment{fin: fin, seq: d.nextSeq, txStart: txStart, txEnd: txEnd, deliverAt: txEnd + d.cfg.Delay}
	d.nextSeq++
	if n == SegmentSize {
		s.pb = bufPool.Get().(*[]byte)
		s.buf = (*s.pb)[:SegmentSize]
	} else if n > 0 {
		s.buf = make([]byte, n)
	}
	copy(s.buf, data)
	wasEmpty := d.head == len(d.segs)
	d.segs = append(d.segs, s)
	d.unread += n
	if wasEmpty {
		d.wakeReaders()
	}
}

// shutWrite ends the writer side with err (ErrWriteClosed for CloseWrite,
// ErrClosed for Close) and queues a FIN behind the data already written.
func (d *dir) shutWrite(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wErr == nil {
		d.pushSeg(nil, true, d.linkNow(time.Now()))
	}
	if d.wErr == nil || err == ErrClosed {
		d.wErr = err
	}
	d.wakeReaders()
	d.wakeWriters()
}

// shutRead closes the reader end: unread data is lost and, unless the
// link is blackholed (the reset would be lost too), writers fail.
func (d *dir) shutRead() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rClosed = true
	if !d.holed {
		d.peerGone = true
	}
	d.dropFrom(d.head)
	d.wakeReaders()
	d.wakeWriters()
}

func (d *dir) closeLink() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.linkClosed = true
	d.dropFrom(d.head)
	d.wakeReaders()
	d.wakeWriters()
}

func (d *dir) freeze(now time.Time) {
	if d.frozen {
		return
	}
	lt := now.Sub(d.epoch)
	d.frozen, d.frozenAt = true, lt
	d.frozenBacklog = 0
	if d.lastTxEnd > lt {
		d.frozenBacklog = bytesIn(d.lastTxEnd-lt, d.rate)
	}
}

func (d *dir) block() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blocked {
		return
	}
	d.blocked = true
	d.blockSeq = d.nextSeq
	d.freeze(time.Now())
}

func (d *dir) unblock() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.blocked {
		return
	}
	d.blocked = false
	if !d.holed {
		d.epoch = time.Now().Add(-d.frozenAt)
		d.frozen = false
	}
	d.wakeReaders()
	d.wakeWriters()
}

func (d *dir) blackhole() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.holed {
		return
	}
	d.holed = true
	d.freeze(time.Now())
	// What already reached the receiver's buffer stays readable; the rest
	// is lost. Visible segments form a prefix because deliverAt grows
	// with seq.
	i := d.head
	for i < len(d.segs) && d.visible(&d.segs[i], d.frozenAt) {
		i++
	}
	d.dropFrom(i)
	d.wakeReaders()
	d.wakeWriters()
}

// setRate changes the rate and reschedules every byte not yet
// transmitted, as if the bottleneck changed speed.
func (d *dir) setRate(rate int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	lt := d.linkNow(time.Now())
	d.rate = rate
	d.recvBuf = d.cfg.recvBuffer(rate)
	i := len(d.segs)
	for i > d.head && d.segs[i-1].txEnd > lt {
		i--
	}
	t := lt
	for k := i; k < len(d.segs); k++ {
		s := &d.segs[k]
		n := int64(len(s.buf))
		total := txDur(n, rate)
		if s.txStart < lt {
			// Partly on the wire: only the rest goes at the new rate.
			rest := int64(mulDiv(uint64(n), uint64(s.txEnd-lt), uint64(s.txEnd-s.txStart), true))
			s.txEnd = lt + txDur(rest, rate)
		} else {
			s.txEnd = t + total
		}
		s.txStart = s.txEnd - total
		s.deliverAt = s.txEnd + d.cfg.Delay
		t = s.txEnd
	}
	if i < len(d.segs) || d.lastTxEnd > lt {
		d.lastTxEnd = t
	}
	d.wakeReaders()
	d.wakeWriters()
}

func (d *dir) setReadDeadline(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rDeadline = t
	d.wakeReaders()
}

func (d *dir) setWriteDeadline(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wDeadline = t
	d.wakeWriters()
}

// DirStats counts one direction's bytes.
type DirStats struct {
	// Written is payload accepted by Write (including bytes later lost).
	Written int64
	// Delivered is payload that reached the receiver, read or not.
	Delivered int64
	// Read is payload returned by the receiver's Read.
	Read int64
	// Dropped is payload lost to Blackhole, Close or Link.Close.
	Dropped int64
	// Unread is payload written, not lost and not yet read: queued, on
	// the wire or waiting in the receive buffer.
	Unread int64
}

func (d *dir) stats() DirStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	lt := d.linkNow(time.Now())
	st := DirStats{Written: d.written, Read: d.read, Dropped: d.dropped, Unread: d.unread, Delivered: d.read}
	for i := d.head; i < len(d.segs) && d.visible(&d.segs[i], lt); i++ {
		st.Delivered += int64(len(d.segs[i].buf) - d.segs[i].off)
	}
	return st
}
