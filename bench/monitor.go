package bench

import (
	"sync"
	"time"

	"github.com/braid-proxy/braid/internal/netlab"
)

// LinkMonitor samples every link's client-side receive counter and records
// the deltas on one Timeline per link: which link carried the download's
// bytes, and when.
type LinkMonitor struct {
	tls  []*Timeline
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartLinkMonitor samples lab's links every interval until Stop.
func StartLinkMonitor(lab *netlab.Lab, interval time.Duration) *LinkMonitor {
	now := time.Now()
	links := lab.Links()
	m := &LinkMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	last := make([]uint64, len(links))
	for i, k := range links {
		m.tls = append(m.tls, NewTimeline(now))
		if c, err := k.Counters(); err == nil {
			last[i] = c.RxBytes
		}
	}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case now := <-tick.C:
				for i, k := range links {
					c, err := k.Counters()
					if err != nil {
						continue
					}
					if c.RxBytes > last[i] {
						m.tls[i].Add(now, int(c.RxBytes-last[i]))
					}
					last[i] = c.RxBytes
				}
			}
		}
	}()
	return m
}

// Stop ends sampling and returns the per-link timelines.
func (m *LinkMonitor) Stop() []*Timeline {
	m.once.Do(func() { close(m.stop); <-m.done })
	return m.tls
}
