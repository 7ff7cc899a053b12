package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/braid-proxy/braid/internal/netlab"
)

// suite holds what every case of TestSuite shares.
type suite struct {
	start   ProxyStarter // nil when the proxy cannot run
	bin     string       // braid binary, when the proxy is braid
	proxy   string       // label in tables
	why     string       // why the proxy is not run, when start is nil
	secs    time.Duration
	out     string
	rep     *Report
	plotDir string
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// findBraid returns $BRAID_BIN, <module>/bin/braid, or a fresh build of
// cmd/braid when the tree has it.
func findBraid() (string, error) {
	if p, err := BraidBinary(); err == nil {
		return p, nil
	}
	root := moduleRoot()
	if m, _ := filepath.Glob(filepath.Join(root, "cmd", "braid", "*.go")); len(m) == 0 {
		return "", ErrNoBraid
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("braid-bench-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-o", out, "./cmd/braid")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/braid: %w: %s", err, b)
	}
	return out, nil
}

// TestSuite is the full benchmark suite behind `make bench`. It runs only
// with -suite or BRAID_BENCH=1 and writes BENCHMARKS.md and plots to -out.
func TestSuite(t *testing.T) {
	if !suiteEnabled() {
		t.Skip("full benchmark suite: run `go test -run TestSuite ./bench/ -suite` or set BRAID_BENCH=1 (make bench)")
	}
	if err := netlab.Check(); err != nil {
		if errors.Is(err, netlab.ErrUnsupported) {
			t.Skipf("benchmark suite needs network namespaces: %v", err)
		}
		t.Fatal(err)
	}
	// 10,000 idle SOCKS connections need ~20,000 descriptors here (the
	// client ends and the target's ends); root may raise the hard limit.
	lim := syscall.Rlimit{Cur: 1 << 17, Max: 1 << 17}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("raise RLIMIT_NOFILE: %v", err)
	}
	s := &suite{secs: time.Duration(*secsFlag * float64(time.Second))}
	s.out = *outFlag
	if s.out == "" {
		s.out = filepath.Join(moduleRoot(), "docs")
	}
	s.plotDir = filepath.Join(s.out, "bench")
	switch *proxyFlag {
	case "braid":
		if bin, err := findBraid(); err != nil {
			s.proxy, s.why = "braid", err.Error()
		} else {
			s.proxy, s.start, s.bin = "braid", BraidStarter(BraidOptions{Bin: bin}), bin
		}
	case "ref":
		s.proxy, s.start = "ref-socks (in-process, single link; harness check, not braid)", RefStarter
	default:
		t.Fatalf("-proxy %q: want braid or ref", *proxyFlag)
	}
	cmd := os.Getenv("BRAID_BENCH_CMD")
	if cmd == "" {
		cmd = "go test -count=1 -timeout 60m -v -run '^TestSuite$' ./bench/ -suite -secs " + fmt.Sprint(*secsFlag)
		if *proxyFlag != "braid" {
			cmd += " -proxy " + *proxyFlag
		}
	}
	s.rep = &Report{Command: cmd, Date: time.Now(), Machine: MachineFacts(), Proxy: s.proxy}
	if s.start == nil {
		s.rep.Proxy += " — NOT RUN: " + s.why
	}
	t.Run("1-aggregation", s.aggregation)
	t.Run("2-failover", s.failover)
	t.Run("3-flapping", s.flapping)
	t.Run("4-outage", s.outage)
	t.Run("5-efficiency", s.efficiency)
	t.Run("6-latency", s.latency)
	t.Run("7-many-streams", s.manyStreams)
	s.rep.Duration = time.Since(s.rep.Date)
	if err := s.rep.Write(s.out); err != nil {
		t.Fatal(err)
	}
	fmt.Println(s.rep.Markdown())
	t.Logf("wrote %s and plots in %s", filepath.Join(s.out, "BENCHMARKS.md"), s.plotDir)
}

func (s *suite) add(sec Section) { s.rep.Sections = append(s.rep.Sections, sec) }

func (s *suite) notRun() string { return "not run" }

// withProxy starts the proxy over links, runs f and stops it; it returns
// false (and notes why) when there is no proxy or it fails to start.
func (s *suite) withProxy(t *testing.T, lab *netlab.Lab, srv *Server, links []int, f func(p Proxy)) bool {
	t.Helper()
	if s.start == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := s.start(ctx, lab, srv, links)
	if err != nil {
		t.Errorf("start %s: %v", s.proxy, err)
		return false
	}
	defer p.Close()
	f(p)
	return true
}

func allLinks(lab *netlab.Lab) []int {
	var l []int
	for _, k := range lab.Links() {
		l = append(l, k.Index)
	}
	return l
}

func rates(specs []netlab.LinkSpec) string {
	var parts []string
	for _, l := range specs {
		if l.RateMbit == 0 {
			parts = append(parts, "unshaped")
		} else {
			parts = append(parts, fmt.Sprint(l.RateMbit))
		}
	}
	return strings.Join(parts, "+")
}

// directAll measures single-TCP goodput of each link, one at a time.
func (s *suite) directAll(t *testing.T, lab *netlab.Lab, srv *Server) []float64 {
	t.Helper()
	var out []float64
	for _, k := range lab.Links() {
		d, err := Fetch(context.Background(), DirectDial(lab, srv, k.Index), BytesFor(k.Spec.RateMbit, s.secs), uint64(k.Index))
		if err != nil {
			t.Fatalf("direct link %d: %v", k.Index, err)
		}
		t.Logf("direct link %d (%v Mbit/s): %.2f Mbit/s", k.Index, k.Spec.RateMbit, d.Mbps())
		out = append(out, d.Mbps())
	}
	return out
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// aggregation: one stream over 20+80, 10+30+60 and 4×25 against the sum of
// direct goodputs and against MPTCP with each link as the first subflow.
func (s *suite) aggregation(t *testing.T) {
	sec := Section{
		Title: "1. Aggregation: one stream",
		Text: fmt.Sprintf("One download of about %v at the links' total rate. Σ direct is the sum of each link's single-TCP goodput, measured one link at a time. "+
			"MPTCP is the kernel's Multipath TCP on the same links, once with each link as the first subflow (the others added as `subflow` endpoints). Goal: %s ≥ 95%% of Σ direct in every case, and ahead of MPTCP.", s.secs, s.proxy),
		Table: Table{Header: []string{"links (Mbit/s)", "Σ direct", "MPTCP by first subflow", "MPTCP best", s.proxy, s.proxy + " / Σ direct", s.proxy + " / MPTCP best", "goal met"}},
	}
	for _, set := range [][]netlab.LinkSpec{
		{{RateMbit: 20}, {RateMbit: 80}},
		{{RateMbit: 10}, {RateMbit: 30}, {RateMbit: 60}},
		{{RateMbit: 25}, {RateMbit: 25}, {RateMbit: 25}, {RateMbit: 25}},
	} {
		name := rates(set)
		t.Run(name, func(t *testing.T) {
			lab, srv := newEnv(t, set...)
			direct := s.directAll(t, lab, srv)
			total := sum(direct)
			var rate float64
			for _, l := range set {
				rate += l.RateMbit
			}
			n := BytesFor(rate, s.secs)
			var mp []string
			var best float64
			var bestTL *Timeline
			for p := range set {
				if err := SetupMPTCP(context.Background(), lab, p); err != nil {
					t.Fatal(err)
				}
				d, err := Fetch(context.Background(), MPTCPDial(lab, srv, p), n, 100+uint64(p))
				if err != nil {
					t.Errorf("MPTCP first subflow on link %d: %v", p, err)
					mp = append(mp, "error")
					continue
				}
				t.Logf("MPTCP first subflow link %d: %.2f Mbit/s", p, d.Mbps())
				mp = append(mp, fmt.Sprintf("l%d: %s", p, fmtMbps(d.Mbps())))
				if d.Mbps() > best {
					best, bestTL = d.Mbps(), d.Timeline
				}
			}
			row := []string{name, fmtMbps(total), strings.Join(mp, ", "), fmtMbps(best)}
			series := []Series{}
			if bestTL != nil {
				series = append(series, Series{Name: "MPTCP (best first subflow)", Points: bestTL.Series(PlotBucket)})
			}
			ran := s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) {
				d, err := Fetch(context.Background(), SOCKSDial(lab, p.SOCKSAddr(), srv), n, 200)
				if err != nil {
					t.Errorf("%s: %v", s.proxy, err)
					row = append(row, "error", "–", "–", "**no**")
					return
				}
				t.Logf("%s: %.2f Mbit/s", s.proxy, d.Mbps())
				series = append([]Series{{Name: s.proxy, Points: d.Timeline.Series(PlotBucket)}}, series...)
				row = append(row, fmtMbps(d.Mbps()), fmtRatio(d.Mbps(), total), fmtRatio(d.Mbps(), best),
					yesNo(d.Mbps() >= 0.95*total && d.Mbps() > best))
			})
			if !ran {
				row = append(row, s.notRun(), "–", "–", "–")
			}
			sec.Table.Rows = append(sec.Table.Rows, row)
			file := "aggregation-" + strings.ReplaceAll(name, "+", "-") + ".png"
			if err := PlotGoodput(filepath.Join(s.plotDir, file), PlotOptions{Title: "One stream over " + name + " Mbit/s", XLabel: "seconds since request", Series: series}); err != nil {
				t.Error(err)
			}
			sec.Plots = append(sec.Plots, "bench/"+file)
		})
	}
	s.notes(&sec)
	s.add(sec)
}

func (s *suite) notes(sec *Section) {
	if s.start == nil {
		sec.Notes = append(sec.Notes, s.proxy+" not run: "+s.why)
	}
}

// fault is one way of taking a link away and giving it back.
type fault struct {
	name    string
	apply   func(k *netlab.Link) error
	restore func(k *netlab.Link) error
}

var faults = []fault{
	{"blackhole", func(k *netlab.Link) error { return k.Blackhole(true) }, func(k *netlab.Link) error { return k.Blackhole(false) }},
	{"link down", func(k *netlab.Link) error { return k.SetDown(true) }, func(k *netlab.Link) error { return k.SetDown(false) }},
}

// failover: the fastest link fails mid-download; seconds until goodput is
// back to half the surviving capacity.
func (s *suite) failover(t *testing.T) {
	set := []netlab.LinkSpec{{RateMbit: 20}, {RateMbit: 80}}
	sec := Section{
		Title: "2. Failover: the fastest link fails mid-download",
		Text: "Links 20+80 Mbit/s; about 3 s into one download the 80 Mbit/s link is blackholed (nft drop, no RST) or set down, and stays so. " +
			"Recovery is the time from the fault to the start of the first 250 ms window (sliding in 10 ms steps) whose goodput is ≥ 50% of the surviving link's direct goodput and stays so for every window starting in the next second (so bytes already in flight at the fault do not count as a recovery). " +
			"The fault time is taken just before the fault command, so command latency counts against the proxy. Every download is checked byte-exact (sha256). Goal: ≤ 0.5 s.",
		Table: Table{Header: []string{"fault", "path", "recovery", "mean goodput 0–5 s after fault, % of surviving", "byte-exact", "goal ≤ 0.5 s"}},
	}
	lab, srv := newEnv(t, set...)
	direct := s.directAll(t, lab, srv)
	fast := 1
	surviving := direct[0]
	before := BytesFor(sum(direct), 3*time.Second)
	n := before + BytesFor(surviving, 6*time.Second)
	for _, f := range faults {
		var series []Series
		var marks []Mark
		run := func(label string, dial DialFunc, seed uint64) {
			k := lab.Link(fast)
			trig := &Trigger{AtBytes: before, Do: func() {
				if err := f.apply(k); err != nil {
					t.Error(err)
				}
			}}
			// trig.At is stamped just before Do runs, so the clock
			// includes the fault command itself.
			d, err := FetchTriggered(context.Background(), dial, n, seed, []*Trigger{trig})
			if rerr := f.restore(k); rerr != nil {
				t.Error(rerr)
			}
			exact := err == nil
			if err != nil {
				t.Errorf("%s / %s: %v", f.name, label, err)
			}
			rec, ok := time.Duration(0), false
			if !trig.At.IsZero() {
				rec, ok = d.Timeline.Recovery(trig.At, surviving, 0.5, time.Second)
			}
			mean := "–"
			if !trig.At.IsZero() {
				b := d.Timeline.Bytes(trig.At, trig.At.Add(5*time.Second))
				mean = fmtRatio(float64(b)*8/5/1e6, surviving)
			}
			t.Logf("%s / %s: recovery %v (found %v), mean after fault %s", f.name, label, rec, ok, mean)
			sec.Table.Rows = append(sec.Table.Rows, []string{f.name, label, fmtSecs(rec, ok), mean, yesNo(exact), yesNo(ok && rec <= 500*time.Millisecond)})
			off := trig.At.Sub(d.Start).Seconds()
			series = append(series, Series{Name: label, Offset: off, Points: d.Timeline.Series(PlotBucket)})
		}
		ran := s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) {
			run(s.proxy, SOCKSDial(lab, p.SOCKSAddr(), srv), 300)
		})
		if !ran {
			sec.Table.Rows = append(sec.Table.Rows, []string{f.name, s.proxy, s.notRun(), "–", "–", "–"})
		}
		for _, p := range []int{fast, 0} {
			if err := SetupMPTCP(context.Background(), lab, p); err != nil {
				t.Fatal(err)
			}
			run(fmt.Sprintf("MPTCP, first subflow on the %s link", map[int]string{0: "surviving 20 Mbit/s", 1: "failing 80 Mbit/s"}[p]), MPTCPDial(lab, srv, p), 310+uint64(p))
		}
		marks = append(marks, Mark{T: 0, Label: f.name})
		file := "failover-" + strings.ReplaceAll(f.name, " ", "-") + ".png"
		if err := PlotGoodput(filepath.Join(s.plotDir, file), PlotOptions{Title: "Failover (" + f.name + " of the 80 Mbit/s link), links 20+80", XLabel: "seconds since fault",
			Series: series, Marks: marks, XMin: -3, XMax: 6}); err != nil {
			t.Error(err)
		}
		sec.Plots = append(sec.Plots, "bench/"+file)
	}
	s.notes(&sec)
	s.add(sec)
}

// flapping: link 1 goes down and up every 3 s through a 60 s download.
func (s *suite) flapping(t *testing.T) {
	set := []netlab.LinkSpec{{RateMbit: 20}, {RateMbit: 80}}
	const period, length = 3 * time.Second, 60 * time.Second
	sec := Section{
		Title: "3. Flapping: a link goes down and up every 3 s",
		Text: "Links 20+80 Mbit/s; through a ~60 s download the 80 Mbit/s link is set down, then up, every 3 s. " +
			"Return time: from each `up` to the start of the first 50 ms window in which that link's receive counter (sampled every 10 ms) shows ≥ 25% of its direct goodput. " +
			"Goal: byte-exact, and every return ≤ 2 s.",
		Table: Table{Header: []string{"path", "byte-exact", "returns", "return time p50", "return time max", "returns never carrying traffic", "goal met"}},
	}
	lab, srv := newEnv(t, set...)
	direct := s.directAll(t, lab, srv)
	n := BytesFor(direct[0]+direct[1]/2, length)
	k := lab.Link(1)
	run := func(label string, dial DialFunc, seed uint64) {
		mon := StartLinkMonitor(lab, 10*time.Millisecond)
		var ups []time.Time
		stop := make(chan struct{})
		flapDone := make(chan struct{})
		go func() {
			defer close(flapDone)
			tick := time.NewTicker(period) // the scenario's schedule
			defer tick.Stop()
			down := false
			for {
				select {
				case <-stop:
					if down {
						k.SetDown(false)
					}
					return
				case <-tick.C:
					down = !down
					if !down {
						ups = append(ups, time.Now())
					}
					if err := k.SetDown(down); err != nil {
						t.Error(err)
					}
				}
			}
		}()
		d, err := Fetch(context.Background(), dial, n, seed)
		close(stop)
		<-flapDone
		tls := mon.Stop()
		exact := err == nil
		if err != nil {
			t.Errorf("%s: %v", label, err)
		}
		var rets []time.Duration
		never := 0
		for _, u := range ups {
			if u.After(d.End) {
				continue
			}
			r, ok := tls[1].RecoveryWindow(u, direct[1], 0.25, 50*time.Millisecond, 0)
			if !ok || u.Add(r).After(d.End) {
				never++
				continue
			}
			rets = append(rets, r)
		}
		slices.Sort(rets)
		p50, mx := "–", "–"
		if len(rets) > 0 {
			p50, mx = fmtSecs(rets[len(rets)/2], true), fmtSecs(rets[len(rets)-1], true)
		}
		good := exact && never == 0 && len(rets) > 0 && rets[len(rets)-1] <= 2*time.Second
		t.Logf("%s: %d returns, p50 %s max %s, never %d, %.1f Mbit/s", label, len(rets)+never, p50, mx, never, d.Mbps())
		sec.Table.Rows = append(sec.Table.Rows, []string{label, yesNo(exact), fmt.Sprint(len(rets) + never), p50, mx, fmt.Sprint(never), yesNo(good)})
	}
	if !s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) { run(s.proxy, SOCKSDial(lab, p.SOCKSAddr(), srv), 400) }) {
		sec.Table.Rows = append(sec.Table.Rows, []string{s.proxy, s.notRun(), "–", "–", "–", "–", "–"})
	}
	if err := SetupMPTCP(context.Background(), lab, 0); err != nil {
		t.Fatal(err)
	}
	run("MPTCP (first subflow on the stable link)", MPTCPDial(lab, srv, 0), 401)
	s.notes(&sec)
	s.add(sec)
}

// outage: every link blackholed for 5 s, then restored.
func (s *suite) outage(t *testing.T) {
	set := []netlab.LinkSpec{{RateMbit: 20}, {RateMbit: 80}}
	sec := Section{
		Title: "4. Full outage: every link blackholed for 5 s",
		Text: "Links 20+80 Mbit/s; about 3 s into a download both links are blackholed for 5 s, then restored. " +
			"Resume: from the restore to the first 250 ms window with ≥ 50% of the total direct goodput, sustained for 1 s. Goal: the stream resumes, byte-exact.",
		Table: Table{Header: []string{"path", "byte-exact", "resume after restore", "goal met"}},
	}
	lab, srv := newEnv(t, set...)
	direct := s.directAll(t, lab, srv)
	before := BytesFor(sum(direct), 3*time.Second)
	n := before + BytesFor(sum(direct), 5*time.Second)
	var series []Series
	run := func(label string, dial DialFunc, seed uint64) {
		var restored time.Time
		trig := &Trigger{AtBytes: before, Do: func() {
			for _, k := range lab.Links() {
				if err := k.Blackhole(true); err != nil {
					t.Error(err)
				}
			}
			<-time.After(5 * time.Second) // the outage's length
			restored = time.Now()
			for _, k := range lab.Links() {
				if err := k.Blackhole(false); err != nil {
					t.Error(err)
				}
			}
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		d, err := FetchTriggered(ctx, dial, n, seed, []*Trigger{trig})
		for _, k := range lab.Links() {
			k.Blackhole(false)
		}
		exact := err == nil
		if err != nil {
			t.Errorf("%s: %v", label, err)
		}
		rec, ok := time.Duration(0), false
		if !restored.IsZero() {
			rec, ok = d.Timeline.Recovery(restored, sum(direct), 0.5, time.Second)
		}
		t.Logf("%s: resume %v (%v)", label, rec, ok)
		sec.Table.Rows = append(sec.Table.Rows, []string{label, yesNo(exact), fmtSecs(rec, ok), yesNo(exact && ok)})
		if !trig.At.IsZero() {
			series = append(series, Series{Name: label, Offset: trig.At.Sub(d.Start).Seconds(), Points: d.Timeline.Series(PlotBucket)})
		}
	}
	if !s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) { run(s.proxy, SOCKSDial(lab, p.SOCKSAddr(), srv), 500) }) {
		sec.Table.Rows = append(sec.Table.Rows, []string{s.proxy, s.notRun(), "–", "–"})
	}
	if err := SetupMPTCP(context.Background(), lab, 0); err != nil {
		t.Fatal(err)
	}
	run("MPTCP", MPTCPDial(lab, srv, 0), 501)
	file := "outage.png"
	if err := PlotGoodput(filepath.Join(s.plotDir, file), PlotOptions{Title: "Full outage (all links blackholed 5 s), links 20+80", XLabel: "seconds since outage start",
		Series: series, Marks: []Mark{{T: 0, Label: "outage"}, {T: 5, Label: "restore"}}, XMin: -3, XMax: 12}); err != nil {
		t.Error(err)
	}
	sec.Plots = append(sec.Plots, "bench/"+file)
	s.notes(&sec)
	s.add(sec)
}

// efficiency: an unshaped veth, one stream: proxy goodput vs direct TCP and
// CPU seconds per GB of the proxy's processes.
func (s *suite) efficiency(t *testing.T) {
	sec := Section{
		Title: "5. Efficiency: unshaped link, TLS on, one stream",
		Text: "One unshaped veth. Direct is a single TCP download on it; the proxy carries the same download over that one link (braid always runs TLS 1.3 on its links). " +
			"CPU is user+system time of each proxy process from /proc during the download. The downloader and target run in the test process on the same 2 cores, so all figures are CPU-bound and relative.",
		Table: Table{Header: []string{"path", "goodput (Mbit/s)", "vs direct", "client CPU s/GB", "exit CPU s/GB"}},
	}
	lab, srv := newEnv(t, netlab.LinkSpec{})
	warm, err := Fetch(context.Background(), DirectDial(lab, srv, 0), 256<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := BytesFor(warm.Mbps(), s.secs)
	d, err := Fetch(context.Background(), DirectDial(lab, srv, 0), n, 2)
	if err != nil {
		t.Fatal(err)
	}
	direct := d.Mbps()
	sec.Table.Rows = append(sec.Table.Rows, []string{"direct TCP", fmtMbps(direct), "100%", "–", "–"})
	ran := s.withProxy(t, lab, srv, []int{0}, func(p Proxy) {
		procs := p.Procs()
		var before []netlab.Usage
		for _, pr := range procs {
			u, _ := pr.Usage()
			before = append(before, u)
		}
		d, err := Fetch(context.Background(), SOCKSDial(lab, p.SOCKSAddr(), srv), n, 3)
		if err != nil {
			t.Errorf("%s: %v", s.proxy, err)
			return
		}
		row := []string{s.proxy, fmtMbps(d.Mbps()), fmtRatio(d.Mbps(), direct), "–", "–"}
		gb := float64(d.Bytes) / 1e9
		for i, pr := range procs {
			if i > 1 {
				break
			}
			if u, err := pr.Usage(); err == nil {
				row[3+i] = fmt.Sprintf("%.2f", (u.CPU-before[i].CPU).Seconds()/gb)
			}
		}
		sec.Table.Rows = append(sec.Table.Rows, row)
	})
	if !ran {
		sec.Table.Rows = append(sec.Table.Rows, []string{s.proxy, s.notRun(), "–", "–", "–"})
	}
	s.notes(&sec)
	s.add(sec)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// latency: time to first byte through the proxy vs direct, and
// request/response latency idle and under a saturating download.
func (s *suite) latency(t *testing.T) {
	set := []netlab.LinkSpec{{RateMbit: 20}, {RateMbit: 80}}
	const probes = 60
	sec := Section{
		Title: "6. Latency",
		Text: fmt.Sprintf("Links 20+80 Mbit/s. TTFB: %d fresh connections each, from the start of the dial (for a proxy: the SOCKS connect) to the first response byte of a 100-byte GET. "+
			"Request/response: %d sequential 100-byte GETs on one kept-alive connection, every 20 ms, idle and while a bulk download on the same path saturates the links (tbf queues hold ≤ 20 ms).", probes, probes),
		Table: Table{Header: []string{"path", "TTFB p50", "TTFB p99", "req/resp idle p50", "idle p99", "loaded p50", "loaded p99"}},
	}
	lab, srv := newEnv(t, set...)
	measure := func(label string, dial DialFunc, bulk int64) {
		ctx := context.Background()
		// TTFB includes the dial (and SOCKS handshake): Fetch's own clock.
		var ttfb []time.Duration
		for i := range probes {
			d, err := Fetch(ctx, dial, 100, uint64(i))
			if err != nil {
				t.Errorf("%s: %v", label, err)
				return
			}
			ttfb = append(ttfb, d.FirstByte.Sub(d.Start))
		}
		rr := func() []time.Duration {
			c, err := dial(ctx)
			if err != nil {
				t.Errorf("%s: %v", label, err)
				return nil
			}
			defer c.Close()
			br := bufio.NewReader(c)
			var out []time.Duration
			tick := time.NewTicker(20 * time.Millisecond) // probe pacing
			defer tick.Stop()
			for range probes {
				<-tick.C
				d, err := Small(c, br, 100)
				if err != nil {
					t.Errorf("%s: %v", label, err)
					return out
				}
				out = append(out, d)
			}
			return out
		}
		idle := rr()
		bctx, cancel := context.WithCancel(ctx)
		bulkDone := make(chan struct{})
		go func() {
			defer close(bulkDone)
			Fetch(bctx, dial, bulk, 9)
		}()
		// Let the bulk download reach full rate before probing.
		<-time.After(time.Second)
		loaded := rr()
		cancel()
		<-bulkDone
		sec.Table.Rows = append(sec.Table.Rows, []string{label,
			ms(percentile(ttfb, 0.5)), ms(percentile(ttfb, 0.99)),
			ms(percentile(idle, 0.5)), ms(percentile(idle, 0.99)),
			ms(percentile(loaded, 0.5)), ms(percentile(loaded, 0.99))})
	}
	big := BytesFor(100, time.Minute)
	measure("direct TCP, 80 Mbit/s link", DirectDial(lab, srv, 1), big)
	if err := SetupMPTCP(context.Background(), lab, 1); err != nil {
		t.Fatal(err)
	}
	measure("MPTCP, both links", MPTCPDial(lab, srv, 1), big)
	if !s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) { measure(s.proxy+", both links", SOCKSDial(lab, p.SOCKSAddr(), srv), big) }) {
		sec.Table.Rows = append(sec.Table.Rows, []string{s.proxy, s.notRun(), "–", "–", "–", "–", "–"})
	}
	s.notes(&sec)
	s.add(sec)
}

// manyStreams: 1,000 concurrent 1 MB downloads, and the memory of 10,000
// idle SOCKS connections.
func (s *suite) manyStreams(t *testing.T) {
	const streams, size, idle = 1000, 1 << 20, 10000
	sec := Section{
		Title: "7. Many streams",
		Text: fmt.Sprintf("Two unshaped links. %d concurrent downloads of 1 MiB through the proxy, each checked byte-exact; then %d idle SOCKS connections (CONNECT done, no data) held open, "+
			"with the resident memory of the proxy's processes before and while holding them.", streams, idle),
		Table: Table{Header: []string{"path", "downloads byte-exact", "aggregate goodput", "wall time", "idle conns held", "client RSS idle→held", "exit RSS idle→held"}},
	}
	lab, srv := newEnv(t, netlab.LinkSpec{}, netlab.LinkSpec{})
	if s.bin != "" {
		// Make sure the exit's per-session stream limit is not what this measures.
		sec.Notes = append(sec.Notes, "braid exit run with `--max-streams 16384`, so the exit's per-session stream limit is not what this case measures.")
		prev := s.start
		s.start = BraidStarter(BraidOptions{Bin: s.bin, ExitArgs: []string{"--max-streams", "16384"}})
		defer func() { s.start = prev }()
	}
	ran := s.withProxy(t, lab, srv, allLinks(lab), func(p Proxy) {
		dial := SOCKSDial(lab, p.SOCKSAddr(), srv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var ok, failed int
		var mu sync.Mutex
		var wg sync.WaitGroup
		var firstErr error
		start := time.Now()
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := Fetch(ctx, dial, size, uint64(1000+i))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				ok++
			}()
		}
		wg.Wait()
		wall := time.Since(start)
		if failed > 0 {
			t.Errorf("%d of %d downloads failed; first: %v", failed, streams, firstErr)
		}
		agg := float64(ok) * size * 8 / wall.Seconds() / 1e6
		row := []string{p.Name(), fmt.Sprintf("%d / %d", ok, streams), fmtMbps(agg) + " Mbit/s", wall.Round(time.Millisecond).String()}

		rss := func() []int64 {
			var out []int64
			for _, pr := range p.Procs() {
				u, err := pr.Usage()
				if err != nil {
					out = append(out, -1)
					continue
				}
				out = append(out, u.RSS)
			}
			return out
		}
		idleT, err := StartIdleTarget(ctx, lab, 2*idle)
		if err != nil {
			t.Fatal(err)
		}
		defer idleT.Close()
		idleDial := SOCKSDialTo(lab, p.SOCKSAddr(), idleT.Target())
		base := rss()
		conns := make([]interface{ Close() error }, 0, idle)
		var cmu sync.Mutex
		sem := make(chan struct{}, 64)
		var iwg sync.WaitGroup
		var idleErr error
		for range idle {
			iwg.Add(1)
			sem <- struct{}{}
			go func() {
				defer iwg.Done()
				defer func() { <-sem }()
				c, err := idleDial(ctx)
				cmu.Lock()
				defer cmu.Unlock()
				if err != nil {
					if idleErr == nil {
						idleErr = err
					}
					return
				}
				conns = append(conns, c)
			}()
		}
		iwg.Wait()
		if idleErr != nil {
			t.Errorf("idle connections: %d of %d opened; first error: %v", len(conns), idle, idleErr)
		}
		held := rss()
		queued, _ := idleT.Queued()
		row = append(row, fmt.Sprintf("%d (target queue %d)", len(conns), queued))
		for i := range 2 {
			if i < len(base) && base[i] >= 0 && held[i] >= 0 {
				row = append(row, fmt.Sprintf("%.0f → %.0f MiB (%.1f KiB/conn)", float64(base[i])/(1<<20), float64(held[i])/(1<<20),
					float64(held[i]-base[i])/1024/float64(max(1, len(conns)))))
			} else {
				row = append(row, "– (in-process)")
			}
		}
		for _, c := range conns {
			c.Close()
		}
		sec.Table.Rows = append(sec.Table.Rows, row)
	})
	if !ran {
		sec.Table.Rows = append(sec.Table.Rows, []string{s.proxy, s.notRun(), "–", "–", "–", "–", "–"})
	}
	s.notes(&sec)
	s.add(sec)
}
