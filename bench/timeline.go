package bench

import (
	"sync"
	"time"
)

// Resolution is the timeline's bucket width. Plots and tables aggregate to
// 250 ms (PlotBucket); the fine buckets let the failover clock slide its
// 250 ms window in 10 ms steps instead of snapping to bucket edges.
const Resolution = 10 * time.Millisecond

// PlotBucket is the bucket width of plots and of the failover criterion.
const PlotBucket = 250 * time.Millisecond

// Timeline counts bytes over time in Resolution-wide buckets. Safe for
// concurrent use.
type Timeline struct {
	mu      sync.Mutex
	start   time.Time
	buckets []int64
	total   int64
}

// NewTimeline starts a timeline at start.
func NewTimeline(start time.Time) *Timeline { return &Timeline{start: start} }

// Start returns the timeline's zero time.
func (t *Timeline) Start() time.Time { return t.start }

// Add records n bytes at time now (clamped to the start).
func (t *Timeline) Add(now time.Time, n int) {
	if t == nil || n <= 0 {
		return
	}
	i := max(0, int(now.Sub(t.start)/Resolution))
	t.mu.Lock()
	defer t.mu.Unlock()
	// Bound growth: a day of 10 ms buckets is 8.6M entries; nothing here runs
	// that long, so later samples are folded into the last bucket.
	i = min(i, 24*3600*100)
	for len(t.buckets) <= i {
		t.buckets = append(t.buckets, 0)
	}
	t.buckets[i] += int64(n)
	t.total += int64(n)
}

// Total returns all bytes recorded.
func (t *Timeline) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

func (t *Timeline) snapshot() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int64(nil), t.buckets...)
}

// Bytes returns the bytes recorded in [from, to), at Resolution.
func (t *Timeline) Bytes(from, to time.Time) int64 {
	b := t.snapshot()
	i := max(0, int(from.Sub(t.start)/Resolution))
	j := min(len(b), int(to.Sub(t.start)/Resolution))
	var s int64
	for ; i < j; i++ {
		s += b[i]
	}
	return s
}

// Point is one sample of a goodput series.
type Point struct {
	// T is the bucket's start in seconds since the timeline start.
	T float64
	// Mbps is the goodput in the bucket in Mbit/s.
	Mbps float64
}

// Series returns goodput per width-wide bucket from the start to the last
// recorded byte. width must be a multiple of Resolution.
func (t *Timeline) Series(width time.Duration) []Point {
	b := t.snapshot()
	per := max(1, int(width/Resolution))
	var pts []Point
	for i := 0; i < len(b); i += per {
		var s int64
		for j := i; j < min(i+per, len(b)); j++ {
			s += b[j]
		}
		pts = append(pts, Point{
			T:    float64(i) * Resolution.Seconds(),
			Mbps: float64(s) * 8 / width.Seconds() / 1e6,
		})
	}
	return pts
}

// Recovery is the failover clock: the time from fault to the start of the
// first PlotBucket-wide window (sliding in Resolution steps) whose goodput
// reaches frac of capacityMbps and stays there: every window starting
// within sustain after it must reach it too (windows running past the last
// recorded byte are not required). The sustain rule keeps data that was
// already in flight at the fault from counting as a recovery. ok is false
// if no such window exists in the recorded data.
func (t *Timeline) Recovery(fault time.Time, capacityMbps, frac float64, sustain time.Duration) (d time.Duration, ok bool) {
	return t.RecoveryWindow(fault, capacityMbps, frac, PlotBucket, sustain)
}

// RecoveryWindow is Recovery with a window width other than PlotBucket (a
// multiple of Resolution).
func (t *Timeline) RecoveryWindow(fault time.Time, capacityMbps, frac float64, window, sustain time.Duration) (d time.Duration, ok bool) {
	b := t.snapshot()
	per := max(1, int(window/Resolution))
	need := frac * capacityMbps * 1e6 / 8 * window.Seconds()
	first := max(0, int(fault.Sub(t.start)/Resolution))
	last := len(b) - per // last window start that fits in the data
	if first > last {
		return 0, false
	}
	// win[i] is the byte count of window [i, i+per), for i in [first, last].
	win := make([]int64, last-first+1)
	var s int64
	for j := first; j < first+per; j++ {
		s += b[j]
	}
	for i := first; i <= last; i++ {
		win[i-first] = s
		s -= b[i]
		if i+per < len(b) {
			s += b[i+per]
		}
	}
	steps := int(sustain / Resolution)
	// A start i qualifies if windows i..min(i+steps, end) all pass.
	for i := 0; i < len(win); i++ {
		if float64(win[i]) < need {
			continue
		}
		okAll := true
		for j := i + 1; j <= min(i+steps, len(win)-1); j++ {
			if float64(win[j]) < need {
				okAll = false
				i = j // no start before j+1 can qualify
				break
			}
		}
		if okAll {
			at := t.start.Add(time.Duration(first+i) * Resolution)
			return max(0, at.Sub(fault)), true
		}
	}
	return 0, false
}
