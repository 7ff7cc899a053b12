//go:build linux

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakConfig shapes runSoak.
type soakConfig struct {
	conns    int           // concurrent transfers
	duration time.Duration // how long new transfers start
	relays   int           // links, each through its own cutting relay
	cutEvery time.Duration // one relay (round robin) is cut this often
	sample   time.Duration // usage sampling period
	maxSize  int           // largest transfer (echo), bytes
	flat     bool          // assert flat memory and goroutines
}

// soakStats is what runSoak saw.
type soakStats struct {
	transfers, bytes, cuts atomic.Int64
	mu                     sync.Mutex
	errs                   []error
}

func (s *soakStats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// runSoak bonds a client to an exit over cfg.relays links, each through
// a relay in this process that cfg.cutEvery cuts one of (closing both
// sides, so the client redials), and runs cfg.conns concurrent echo
// transfers of random sizes through it for cfg.duration, every one
// checked by sha256. It fails on any transfer error, on a process that
// does not return to its baseline afterwards and, with cfg.flat, on
// memory or goroutines that keep growing.
func runSoak(t *testing.T, cfg soakConfig) {
	ex, exitAddr := startExit(t, allowLoopback...)
	args := []string{}
	relays := make([]*relay, cfg.relays)
	for i := range relays {
		relays[i] = startRelay(t, exitAddr, false)
		args = append(args, "--link", fmt.Sprintf("to=%s,name=r%d", relays[i].Addr(), i))
	}
	cl, socks := startClient(t, exitAddr, args...)
	waitLinks(t, cl, cfg.relays)
	tg := startTarget(t, echo)
	// Warm up, so the baseline has the goroutines a used session keeps.
	if err := connectOK(socks, tg); err != nil {
		t.Fatal(err)
	}
	baseC, baseE := cl.usage(), ex.usage()
	t.Logf("before: client %v; exit %v", baseC, baseE)

	var st soakStats
	stop := make(chan struct{})
	var bg sync.WaitGroup
	// Link flapping.
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(cfg.cutEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				st.cuts.Add(int64(relays[i%len(relays)].cut()))
			}
		}
	}()
	// Usage samples.
	type sample struct {
		at   time.Duration
		c, e usage
	}
	var samples []sample
	start := time.Now()
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(cfg.sample)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// usage() may call t.Fatal: not from this goroutine.
				c, e := quietUsage(cl), quietUsage(ex)
				samples = append(samples, sample{time.Since(start), c, e})
			}
		}
	}()

	deadline := start.Add(cfg.duration)
	var workers sync.WaitGroup
	for w := range cfg.conns {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; time.Now().Before(deadline); i++ {
				n := int64(1 + rnd.IntN(cfg.maxSize))
				seed := uint64(w)<<32 | uint64(i)
				c, rep, err := socksConnect(socks, localDest(tg.Addr()), 30*time.Second)
				if err == nil && rep != 0 {
					err = fmt.Errorf("SOCKS reply %d", rep)
				}
				if err == nil {
					c.SetDeadline(time.Now().Add(2 * time.Minute))
					err = echoRoundTrip(c, seed, n)
					c.Close()
				}
				if err != nil {
					st.fail(fmt.Errorf("worker %d transfer %d (%d bytes): %w", w, i, n, err))
					return
				}
				st.transfers.Add(1)
				st.bytes.Add(n)
			}
		}()
	}
	workers.Wait()
	close(stop)
	bg.Wait()
	el := time.Since(start)
	cl.requireAlive()
	ex.requireAlive()
	t.Logf("%d transfers, %.1f MiB echoed byte-exact in %v by %d concurrent workers; %d relay connections cut",
		st.transfers.Load(), float64(st.bytes.Load())/(1<<20), el.Round(time.Second), cfg.conns, st.cuts.Load())
	for _, err := range st.errs[:min(len(st.errs), 10)] {
		t.Error(err)
	}
	if len(st.errs) > 0 {
		t.Fatalf("%d transfers failed", len(st.errs))
	}
	if st.cuts.Load() == 0 {
		t.Fatal("no link was cut")
	}
	var redials int64
	for _, r := range relays {
		redials += r.accepted.Load() - 1
	}
	t.Logf("the client redialed %d times", redials)
	if redials == 0 {
		t.Fatal("the client never redialed a cut link")
	}

	if len(samples) > 0 {
		peak := func(from, to float64, f func(sample) int64) int64 {
			var m int64
			for _, s := range samples {
				if x := float64(s.at) / float64(el); x >= from && x <= to {
					m = max(m, f(s))
				}
			}
			return m
		}
		rssC := func(s sample) int64 { return s.c.RSS }
		rssE := func(s sample) int64 { return s.e.RSS }
		gC := func(s sample) int64 { return int64(s.c.Goroutines) }
		gE := func(s sample) int64 { return int64(s.e.Goroutines) }
		for _, m := range []struct {
			name string
			f    func(sample) int64
			unit float64
		}{{"client RSS MiB", rssC, 1 << 20}, {"exit RSS MiB", rssE, 1 << 20}, {"client goroutines", gC, 1}, {"exit goroutines", gE, 1}} {
			early, late := peak(0.25, 0.5, m.f), peak(0.75, 1, m.f)
			t.Logf("%s: peak %.1f in the second quarter, %.1f in the last", m.name, float64(early)/m.unit, float64(late)/m.unit)
			// Flat: the last quarter may not exceed the second by more
			// than 20% (plus 32 MiB or 5% of goroutines for noise).
			slack := int64(32 << 20)
			if m.unit == 1 {
				slack = early / 20
			}
			if cfg.flat && early > 0 && late > early+early/5+slack {
				t.Errorf("%s grew: %.1f in the second quarter, %.1f in the last", m.name, float64(early)/m.unit, float64(late)/m.unit)
			}
		}
		if cfg.flat {
			logSeries(t, samples[:], func(s sample) string {
				return fmt.Sprintf("%4.0fs client %v | exit %v", s.at.Seconds(), s.c, s.e)
			})
		}
	}
	for _, p := range []struct {
		p    *proc
		base usage
	}{{cl, baseC}, {ex, baseE}} {
		after, ok := p.p.waitBaseline(p.base, 4, 10, 60*time.Second)
		t.Logf("%s after: %v (before %v)", p.p.name, after, p.base)
		if !ok {
			t.Errorf("%s did not return to its baseline", p.p.name)
		}
	}
}

// quietUsage is usage for a sampling goroutine: zero instead of failing.
func quietUsage(p *proc) usage {
	u := usage{Goroutines: -1, RSS: readRSS(p.Pid())}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.Pid()) + "/fd"); err == nil {
		u.FDs = len(ents)
	}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.Pid()) + "/task"); err == nil {
		u.Threads = len(ents)
	}
	if p.admin != "" {
		if g, err := scrapeMetric(p.admin, "go_goroutines"); err == nil {
			u.Goroutines = int(g)
		}
	}
	return u
}

// logSeries logs at most 20 evenly spaced samples.
func logSeries[S any](t *testing.T, s []S, f func(S) string) {
	step := max(1, len(s)/20)
	idx := []int{}
	for i := 0; i < len(s); i += step {
		idx = append(idx, i)
	}
	if last := len(s) - 1; last >= 0 && !slices.Contains(idx, last) {
		idx = append(idx, last)
	}
	for _, i := range idx {
		t.Log(f(s[i]))
	}
}

// TestFlappingLinksByteExact is a short soak that always runs: 32
// concurrent echo transfers over three links whose relays are cut one
// after another every 1.5 s, for 8 s. Every byte must come back exact,
// and both processes must return to their baselines.
func TestFlappingLinksByteExact(t *testing.T) {
	runSoak(t, soakConfig{conns: 32, duration: 8 * time.Second, relays: 3, cutEvery: 1500 * time.Millisecond,
		sample: time.Second, maxSize: 512 << 10})
}

// TestSoak is `make soak`: 1,000 concurrent transfers over three
// flapping links for BRAID_SOAK_DURATION (default 10m), every byte exact,
// resident memory flat, no goroutine growth. It runs only with
// BRAID_SOAK=1:
//
//	BRAID_SOAK=1 go test -run '^TestSoak$' -v -timeout 0 ./e2e/
func TestSoak(t *testing.T) {
	if os.Getenv("BRAID_SOAK") != "1" {
		t.Skip("set BRAID_SOAK=1 to run the soak test (make soak)")
	}
	d := 10 * time.Minute
	if s := os.Getenv("BRAID_SOAK_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("BRAID_SOAK_DURATION: %v", err)
		}
	}
	conns := 1000
	if n, err := strconv.Atoi(os.Getenv("BRAID_SOAK_CONNS")); err == nil && n > 0 {
		conns = n
	}
	// Each link is cut every 15 s, so it lives past the client's 10 s
	// backoff reset and redials fast each time.
	runSoak(t, soakConfig{conns: conns, duration: d, relays: 3, cutEvery: 5 * time.Second,
		sample: max(time.Second, d/100), maxSize: 1 << 20, flat: true})
}
