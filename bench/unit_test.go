package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"image/png"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	socks5 "github.com/things-go/go-socks5"
)

func TestPayloadDeterministicAndPositional(t *testing.T) {
	const n = 100_003
	whole := make([]byte, n)
	fillPayload(whole, 5, 0)
	// Any split into odd-sized reads yields the same bytes.
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(NewPayload(5, n), 1000)))
	if err != nil || !bytes.Equal(got, whole[:1000]) {
		t.Fatalf("one-byte reads differ: %v", err)
	}
	for _, off := range []int64{1, 7, 8, 9, 4093} {
		part := make([]byte, 333)
		fillPayload(part, 5, off)
		if !bytes.Equal(part, whole[off:off+333]) {
			t.Fatalf("fill at offset %d differs", off)
		}
	}
	all, _ := io.ReadAll(NewPayload(5, n))
	if !bytes.Equal(all, whole) {
		t.Fatal("Payload reader differs from fillPayload")
	}
	if PayloadSum(5, n) != sha256.Sum256(whole) || PayloadSum(5, n) != sha256.Sum256(whole) {
		t.Fatal("PayloadSum wrong")
	}
	other := make([]byte, n)
	fillPayload(other, 6, 0)
	if bytes.Equal(other, whole) {
		t.Fatal("seeds 5 and 6 give the same payload")
	}
	// Swapping two aligned 8-byte words changes the content: position matters.
	if bytes.Equal(whole[0:8], whole[8:16]) {
		t.Fatal("adjacent words equal")
	}
	if BytesFor(80, 2*time.Second) != 20_000_000 {
		t.Fatalf("BytesFor(80 Mbit, 2 s) = %d", BytesFor(80, 2*time.Second))
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tl := NewTimeline(t0)
	// 1 MB/s (8 Mbit/s) for 2 s, nothing for 1 s, then 1 MB/s again.
	for i := range 200 {
		tl.Add(t0.Add(time.Duration(i)*Resolution), 10_000)
	}
	for i := 300; i < 500; i++ {
		tl.Add(t0.Add(time.Duration(i)*Resolution), 10_000)
	}
	tl.Add(t0.Add(-time.Second), 1) // clamped into the first bucket
	if tl.Total() != 4_000_001 {
		t.Fatalf("total %d", tl.Total())
	}
	if b := tl.Bytes(t0.Add(time.Second), t0.Add(2*time.Second)); b != 1_000_000 {
		t.Fatalf("Bytes = %d", b)
	}
	pts := tl.Series(PlotBucket)
	if len(pts) != 20 || pts[1].Mbps != 8 || pts[9].Mbps != 0 || pts[19].T != 4.75 {
		t.Fatalf("series %+v", pts)
	}
	// Fault at 2 s: goodput is back at 3 s; 50% of 8 Mbit/s needs a window
	// that is at least half full, which first starts at 2.88 s.
	for _, sustain := range []time.Duration{0, time.Second} {
		d, ok := tl.Recovery(t0.Add(2*time.Second), 8, 0.5, sustain)
		if !ok || d != 880*time.Millisecond {
			t.Fatalf("recovery (sustain %v) %v %v", sustain, d, ok)
		}
	}
	if _, ok := tl.Recovery(t0.Add(2*time.Second), 100, 0.5, 0); ok {
		t.Fatal("recovery found for an unreachable capacity")
	}
	// A fault that does not dent goodput recovers at once.
	if d, ok := tl.Recovery(t0.Add(500*time.Millisecond), 8, 0.5, time.Second); !ok || d != 0 {
		t.Fatalf("no-dent recovery %v %v", d, ok)
	}
	// A fault 200 ms before the stall: the in-flight flush passes one window
	// but is not sustained, so the clock runs until the real return.
	if d, ok := tl.Recovery(t0.Add(1800*time.Millisecond), 8, 0.5, 0); !ok || d != 0 {
		t.Fatalf("unsustained recovery %v %v, want 0", d, ok)
	}
	if d, ok := tl.Recovery(t0.Add(1800*time.Millisecond), 8, 0.5, time.Second); !ok || d != 1080*time.Millisecond {
		t.Fatalf("sustained recovery %v %v, want 1.08s", d, ok)
	}
	// A 50 ms window: needs 25 kB, first met by the window starting 2.98 s.
	if d, ok := tl.RecoveryWindow(t0.Add(2*time.Second), 8, 0.5, 50*time.Millisecond, 0); !ok || d != 980*time.Millisecond {
		t.Fatalf("50 ms window recovery %v %v", d, ok)
	}
	// Nothing after the fault fits a window: no recovery.
	if _, ok := tl.Recovery(t0.Add(10*time.Second), 8, 0.5, 0); ok {
		t.Fatal("recovery past the data")
	}
}

// socksServer runs go-socks5 on loopback; its dials go to loopback too.
func socksServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := socks5.NewServer(socks5.WithLogger(socks5.NewLogger(log.New(io.Discard, "", 0))))
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestSOCKSConnectLoopback(t *testing.T) {
	echo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	proxy := socksServer(t)
	c, err := net.Dial("tcp4", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ep := echo.Addr().(*net.TCPAddr)
	if err := SOCKSConnect(c, "127.0.0.1", uint16(ep.Port)); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("braid"), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through socks: %v", err)
	}
	// A refused destination comes back as a reply code, not a hang.
	closed, _ := net.Listen("tcp4", "127.0.0.1:0")
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	c2, err := net.Dial("tcp4", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	err = SOCKSConnect(c2, "127.0.0.1", uint16(port))
	var re *SOCKSReplyError
	if !errors.As(err, &re) || re.ReplyCode() != 5 || !errors.Is(err, ErrSOCKS) {
		t.Fatalf("refused: %v", err)
	}
	if err := SOCKSConnect(c2, strings.Repeat("x", 256), 1); !errors.Is(err, ErrSOCKS) {
		t.Fatalf("long name: %v", err)
	}
}

func TestReadSOCKSReplies(t *testing.T) {
	ok := []byte{5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0, 80, 'X'}
	r := bytes.NewReader(ok)
	if err := readSOCKSReplies(r); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 1 {
		t.Fatalf("reply parser consumed payload: %d left", r.Len())
	}
	for name, b := range map[string][]byte{
		"auth required": {5, 2},
		"bad version":   {5, 0, 4, 0, 0, 1, 0, 0, 0, 0, 0, 0},
		"bad atyp":      {5, 0, 5, 0, 0, 9},
		"short":         {5, 0, 5, 0, 0, 3, 10, 'a'},
		"fail code":     {5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0},
	} {
		if err := readSOCKSReplies(bytes.NewReader(b)); !errors.Is(err, ErrSOCKS) {
			t.Errorf("%s: %v", name, err)
		}
	}
	name := append([]byte{5, 0, 5, 0, 0, 3, 3}, "abc"...)
	if err := readSOCKSReplies(bytes.NewReader(append(name, 0, 1))); err != nil {
		t.Fatalf("domain reply: %v", err)
	}
	v6 := append([]byte{5, 0, 5, 0, 0, 4}, make([]byte, 18)...)
	if err := readSOCKSReplies(bytes.NewReader(v6)); err != nil {
		t.Fatalf("ipv6 reply: %v", err)
	}
}

func FuzzReadSOCKSReplies(f *testing.F) {
	f.Add([]byte{5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 0, 5, 0, 0, 3, 255})
	f.Add([]byte{5, 0, 5, 3, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		err := readSOCKSReplies(r)
		used := len(b) - r.Len()
		if used > 2+4+1+255+2 {
			t.Fatalf("read %d bytes, more than any reply", used)
		}
		if err == nil && (b[0] != 5 || b[1] != 0 || b[3] != 0) {
			t.Fatalf("accepted a failing reply %x", b)
		}
	})
}

func TestParseSize(t *testing.T) {
	if n, err := parseSize("1048576", MaxDownload); err != nil || n != 1<<20 {
		t.Fatal(n, err)
	}
	for _, bad := range []string{"", "-1", "x", "99999999999999999999", "68719476737"} {
		if _, err := parseSize(bad, MaxDownload); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	f.Add("0")
	f.Add("1048576")
	f.Add("-5")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s, 1<<20)
		if err == nil && (n < 0 || n > 1<<20) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func TestStepTicks(t *testing.T) {
	var got []float64
	for _, tk := range (stepTicks{}).Ticks(0, 325) {
		got = append(got, tk.Value)
	}
	if len(got) != 7 || got[0] != 0 || got[1] != 50 || got[6] != 300 {
		t.Fatalf("ticks %v", got)
	}
	if len((stepTicks{}).Ticks(1, 1)) != 0 {
		t.Fatal("ticks for an empty range")
	}
}

func TestReportAndPlot(t *testing.T) {
	dir := t.TempDir()
	tl := NewTimeline(time.Unix(0, 0))
	for i := range 300 {
		tl.Add(time.Unix(0, 0).Add(time.Duration(i)*Resolution), 25_000)
	}
	png1 := filepath.Join(dir, "bench", "x.png")
	err := PlotGoodput(png1, PlotOptions{Title: "test", XLabel: "s", Series: []Series{{Name: "a", Points: tl.Series(PlotBucket)}, {Name: "b", Offset: 1, Points: tl.Series(PlotBucket)}},
		Marks: []Mark{{T: 1, Label: "fault"}}, XMin: -1, XMax: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	r := &Report{
		Command: "make bench", Date: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC), Duration: 90 * time.Second,
		Machine: MachineFacts(), Proxy: "braid",
		Sections: []Section{{Title: "Case", Text: "why", Table: Table{Header: []string{"a", "b|c"}, Rows: [][]string{{"1", "2"}}},
			Plots: []string{"bench/x.png"}, Notes: []string{"note"}}},
	}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	for _, want := range []string{"`make bench`", "2030-01-02 03:04 UTC", "| a | b\\|c |", "| 1 | 2 |", "![x.png](bench/x.png)", "- note", "## Case", r.Machine.Kernel} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if r.Machine.Cores < 1 || r.Machine.Go == "" {
		t.Errorf("machine facts %+v", r.Machine)
	}
}

func TestFetchContextCancel(t *testing.T) {
	// A server that answers the headers and then stalls: Fetch must return
	// when its context ends.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc")
		io.Copy(io.Discard, c)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	dial := func(ctx context.Context) (net.Conn, error) { return net.Dial("tcp4", ln.Addr().String()) }
	trig := &Trigger{AtBytes: 3, Do: cancel}
	_, err = FetchTriggered(ctx, dial, 1000, 0, []*Trigger{trig})
	if err == nil {
		t.Fatal("stalled fetch returned no error")
	}
	<-done
}
