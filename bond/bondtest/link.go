package bondtest

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

var linkSeq atomic.Uint64

// Link is a fake point-to-point connection with two ends, A and B, each
// direction shaped by its own LinkConfig. All methods are safe for
// concurrent use.
type Link struct {
	name   string
	ab, ba *dir
	a, b   *Conn
}

// Pipe returns a link named "linkN" (N counts up per process). It panics
// if a config fails Validate, as a test fixture should.
func Pipe(aToB, bToA LinkConfig) *Link {
	return PipeNamed(fmt.Sprintf("link%d", linkSeq.Add(1)), aToB, bToA)
}

// PipeNamed is Pipe with a chosen name; the ends' addresses are
// "name/a" and "name/b".
func PipeNamed(name string, aToB, bToA LinkConfig) *Link {
	for _, c := range []LinkConfig{aToB, bToA} {
		if err := c.Validate(); err != nil {
			panic(err)
		}
	}
	now := time.Now()
	l := &Link{name: name, ab: newDir(aToB, now), ba: newDir(bToA, now)}
	aAddr, bAddr := Addr{Link: name, End: "a"}, Addr{Link: name, End: "b"}
	l.a = &Conn{link: l, in: l.ba, out: l.ab, local: aAddr, remote: bAddr}
	l.b = &Conn{link: l, in: l.ab, out: l.ba, local: bAddr, remote: aAddr}
	return l
}

// Links returns n links; link i uses cfg[i%len(cfg)] in both directions,
// or an unshaped config when cfg is empty.
func Links(n int, cfg ...LinkConfig) []*Link {
	if len(cfg) == 0 {
		cfg = []LinkConfig{DefaultConfig()}
	}
	ls := make([]*Link, n)
	for i := range ls {
		c := cfg[i%len(cfg)]
		ls[i] = Pipe(c, c)
	}
	return ls
}

// Name is the link's name, the host part of its ends' addresses.
func (l *Link) Name() string { return l.name }

// A is the end that writes the aToB direction.
func (l *Link) A() *Conn { return l.a }

// B is the end that writes the bToA direction.
func (l *Link) B() *Conn { return l.b }

// Block pauses both directions without losing anything: nothing is
// transmitted or delivered, writers block once the queue is full. Already
// delivered data stays readable. Block on a blocked link does nothing.
func (l *Link) Block() {
	l.ab.block()
	l.ba.block()
}

// Unblock resumes a blocked link exactly where it stopped: every pending
// transmission and delivery happens later by the time spent blocked.
func (l *Link) Unblock() {
	l.ab.unblock()
	l.ba.unblock()
}

// Blackhole loses, permanently, every byte not yet delivered in both
// directions, including FINs and resets. Writes are accepted until
// QueueBytes are waiting, then block until a deadline, Close or
// Link.Close, like TCP whose peer stopped acknowledging.
func (l *Link) Blackhole() {
	l.ab.blackhole()
	l.ba.blackhole()
}

// Close tears the link down like a reset: both ends' pending and future
// Reads and Writes fail with ErrLinkClosed, and undelivered or unread data
// is lost. Close is idempotent.
func (l *Link) Close() {
	l.ab.closeLink()
	l.ba.closeLink()
}

// SetRate changes each direction's rate (bytes/s, 0 unlimited). Bytes not
// yet transmitted are rescheduled at the new rate.
func (l *Link) SetRate(aToB, bToA int64) {
	if aToB < 0 || bToA < 0 {
		panic(fmt.Sprintf("bondtest: SetRate(%d, %d): negative rate", aToB, bToA))
	}
	l.ab.setRate(aToB)
	l.ba.setRate(bToA)
}

// Stats counts a link's bytes per direction.
type Stats struct {
	AToB DirStats
	BToA DirStats
}

// Stats returns a snapshot of both directions' counters.
func (l *Link) Stats() Stats {
	return Stats{AToB: l.ab.stats(), BToA: l.ba.stats()}
}

// Addr is a fake end address, "link/end".
type Addr struct {
	Link string // the link's name
	End  string // "a" or "b"
}

// Network returns "bondtest".
func (Addr) Network() string { return "bondtest" }

func (a Addr) String() string { return a.Link + "/" + a.End }

var _ net.Addr = Addr{}
