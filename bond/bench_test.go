package bond

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braid-proxy/braid/bond/bondtest"
)

// shape is one fake uplink: rate in Mbit/s and RTT.
type shape struct {
	mbit float64
	rtt  time.Duration
}

func (s shape) bytesPerSec() float64 { return s.mbit * 1e6 / 8 }

func (s shape) linkConfig() bondtest.LinkConfig {
	c := bondtest.DefaultConfig()
	c.Rate = int64(s.bytesPerSec())
	c.Delay = s.rtt / 2
	// The kernel's unsent queue under TCP_NOTSENT_LOWAT (128 KiB); at
	// least 20 ms of data so a writer woken late on this shared machine
	// does not let a fast link idle.
	c.QueueBytes = max(128<<10, int(s.bytesPerSec()*0.02))
	return c
}

// shapedPair joins a client and exit over one fake link per shape.
func shapedPair(tb testing.TB, cfg Config, shapes []shape) (*pair, []*bondtest.Link) {
	var links []*bondtest.Link
	mk := func(i int) func() (net.Conn, net.Conn) {
		return func() (net.Conn, net.Conn) {
			l := bondtest.PipeNamed(fmt.Sprintf("l%d", i), shapes[i].linkConfig(), shapes[i].linkConfig())
			links = append(links, l)
			return l.A(), l.B()
		}
	}
	p := newPair(tb, cfg, mk(0))
	for i := 1; i < len(shapes); i++ {
		p.join(mk(i), LinkOptions{Name: fmt.Sprintf("l%d", i)})
	}
	return p, links
}

// meter reads r to EOF, counting bytes in buckets of width.
type meter struct {
	start  time.Time
	width  time.Duration
	mu     sync.Mutex
	bucket []int64
	total  int64
	end    time.Time
}

func readMetered(r io.Reader, width time.Duration) (*meter, <-chan error) {
	m := &meter{start: time.Now(), width: width}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				now := time.Now()
				i := int(now.Sub(m.start) / width)
				m.mu.Lock()
				for len(m.bucket) <= i {
					m.bucket = append(m.bucket, 0)
				}
				m.bucket[i] += int64(n)
				m.total += int64(n)
				m.end = now
				m.mu.Unlock()
			}
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	return m, done
}

// writeN writes n bytes of pattern to w, then CloseWrite.
func writeN(w *Session, n int64) error {
	buf := payload(7, 256<<10)
	for n > 0 {
		k := min(int64(len(buf)), n)
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return w.CloseWrite()
}

func shapesName(shapes []shape) string {
	var parts []string
	for _, s := range shapes {
		parts = append(parts, fmt.Sprintf("%gM@%v", s.mbit, s.rtt))
	}
	return strings.Join(parts, "+")
}

// BenchmarkAggregate measures one stream's goodput over shaped fake links
// as a share of the sum of their rates (pct_of_sum). Run with
// -benchtime 1x: each iteration is a multi-second transfer.
func BenchmarkAggregate(b *testing.B) {
	cases := [][]shape{
		{{20, 20 * time.Millisecond}, {80, 20 * time.Millisecond}},
		{{10, 20 * time.Millisecond}, {30, 20 * time.Millisecond}, {60, 20 * time.Millisecond}},
		{{20, 80 * time.Millisecond}, {80, 10 * time.Millisecond}},
		{{20, 10 * time.Millisecond}, {80, 80 * time.Millisecond}},
		{{10, 80 * time.Millisecond}, {30, 10 * time.Millisecond}, {60, 40 * time.Millisecond}},
	}
	for _, shapes := range cases {
		b.Run(shapesName(shapes), func(b *testing.B) {
			sum := 0.0
			for _, s := range shapes {
				sum += s.bytesPerSec()
			}
			const seconds = 4
			size := int64(sum * seconds)
			var pct float64
			for range b.N {
				p, _ := shapedPair(b, DefaultConfig(), shapes)
				m, done := readMetered(p.client, 100*time.Millisecond)
				start := time.Now()
				if err := writeN(p.exit, size); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				if m.total != size {
					b.Fatalf("got %d bytes, want %d", m.total, size)
				}
				pct = 100 * float64(size) / m.end.Sub(start).Seconds() / sum
				p.client.Close()
				p.srv.Close()
			}
			b.ReportMetric(pct, "pct_of_sum")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkFailover blackholes the fastest link mid-transfer and reports
// the seconds until goodput is back to at least half the surviving
// capacity (recovery_s, 100 ms buckets), and the goodput after it as a
// share of the surviving capacity (pct_after).
func BenchmarkFailover(b *testing.B) {
	cases := [][]shape{
		{{20, 20 * time.Millisecond}, {80, 20 * time.Millisecond}},
		{{10, 20 * time.Millisecond}, {30, 20 * time.Millisecond}, {60, 20 * time.Millisecond}},
		{{20, 80 * time.Millisecond}, {80, 10 * time.Millisecond}},
	}
	for _, shapes := range cases {
		b.Run(shapesName(shapes), func(b *testing.B) {
			fastest, surviving := 0, 0.0
			for i, s := range shapes {
				if s.mbit > shapes[fastest].mbit {
					fastest = i
				}
			}
			for i, s := range shapes {
				if i != fastest {
					surviving += s.bytesPerSec()
				}
			}
			const width = 100 * time.Millisecond
			var recovery, after float64
			for range b.N {
				p, links := shapedPair(b, DefaultConfig(), shapes)
				m, done := readMetered(p.client, width)
				werr := make(chan error, 1)
				go func() { werr <- writeN(p.exit, 1<<40) }()
				time.Sleep(2 * time.Second) // let the transfer reach steady state
				fault := time.Now()
				links[fastest].Blackhole()
				time.Sleep(3 * time.Second)
				m.mu.Lock()
				first := int((fault.Sub(m.start) + width - 1) / width)
				recovery = -1
				for i := first; i < len(m.bucket); i++ {
					if float64(m.bucket[i])/width.Seconds() >= surviving/2 {
						recovery = m.start.Add(time.Duration(i+1) * width).Sub(fault).Seconds()
						break
					}
				}
				full := min(len(m.bucket), int(time.Since(m.start)/width)) // complete buckets only
				tail := m.bucket[max(full-10, first):full]
				var n int64
				for _, x := range tail {
					n += x
				}
				after = 100 * float64(n) / (float64(len(tail)) * width.Seconds()) / surviving
				m.mu.Unlock()
				p.client.Close()
				p.srv.Close()
				<-done
				<-werr
			}
			b.ReportMetric(recovery, "recovery_s")
			b.ReportMetric(after, "pct_after")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkLoopbackTCP measures one stream over two unshaped loopback TCP
// links: the CPU cost of the bonding layer itself (b.SetBytes: MB/s).
func BenchmarkLoopbackTCP(b *testing.B) {
	p := newPair(b, DefaultConfig(), tcpPair(b))
	p.join(tcpPair(b), LinkOptions{Name: "l1"})
	const size = 256 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, p.client, size)
			done <- err
		}()
		buf := payload(8, 256<<10)
		for n := 0; n < size; n += len(buf) {
			if _, err := p.exit.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
