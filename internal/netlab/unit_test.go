package netlab

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := map[string]func(*Config){
		"no links":       func(c *Config) { c.Links = nil },
		"too many links": func(c *Config) { c.Links = make([]LinkSpec, MaxLinks+1) },
		"negative rate":  func(c *Config) { c.Links[0].RateMbit = -1 },
		"tiny rate":      func(c *Config) { c.Links[0].RateMbit = 0.01 },
		"huge delay":     func(c *Config) { c.Links[1].DelayMs = 20000 },
		"negative delay": func(c *Config) { c.Links[1].DelayMs = -1 },
		"empty prefix":   func(c *Config) { c.Prefix = "" },
		"prefix dash":    func(c *Config) { c.Prefix = "a-b" },
		"long prefix":    func(c *Config) { c.Prefix = "abcdefghi" },
		"zero queue":     func(c *Config) { c.QueueMs = 0 },
		"small burst":    func(c *Config) { c.BurstBytes = 100 },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
		})
	}
	c := DefaultConfig()
	c.Links = []LinkSpec{{RateMbit: 0}, {RateMbit: 0.1, DelayMs: 50}}
	if err := c.Validate(); err != nil {
		t.Fatalf("unshaped + slow link rejected: %v", err)
	}
}

func TestTBFParams(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		rate         float64
		burst, limit int
	}{
		{20, 16384, 50000 + 16384},       // 2.5 MB/s: 4 ms is 10 kB < 16 KiB floor
		{100, 50000, 250000 + 50000},     // 12.5 MB/s: 4 ms = 50 kB, 20 ms = 250 kB
		{1000, 500000, 2500000 + 500000}, // 1 Gbit/s
	} {
		b, l := c.tbfParams(tc.rate)
		if b != tc.burst || l != tc.limit {
			t.Errorf("tbfParams(%v) = %d, %d; want %d, %d", tc.rate, b, l, tc.burst, tc.limit)
		}
	}
	c.BurstBytes = 3000
	if b, _ := c.tbfParams(100); b != 3000 {
		t.Errorf("burst override ignored: %d", b)
	}
}

func TestParseNSName(t *testing.T) {
	for _, tc := range []struct {
		in     string
		prefix string
		pid    int
		ok     bool
	}{
		{"brd-123-4-client", "brd", 123, true},
		{"brd-123-4-exit", "brd", 123, true},
		{"x9-1-1-exit", "x9", 1, true},
		{"brd-0-4-exit", "", 0, false},
		{"brd-123-4-other", "", 0, false},
		{"brd-123-client", "", 0, false},
		{"brd-12a-4-client", "", 0, false},
		{"dockerxyz1-123-4-client", "", 0, false}, // prefix longer than 8
		{"", "", 0, false},
	} {
		p, pid, ok := parseNSName(tc.in)
		if p != tc.prefix || pid != tc.pid || ok != tc.ok {
			t.Errorf("parseNSName(%q) = %q, %d, %v; want %q, %d, %v", tc.in, p, pid, ok, tc.prefix, tc.pid, tc.ok)
		}
	}
}

func TestParseNetnsList(t *testing.T) {
	got := parseNetnsList([]byte("brd-1-2-exit (id: 3)\nfoo\n\n  \nbar (id: 0)\n"))
	want := []string{"brd-1-2-exit", "foo", "bar"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestParseStat(t *testing.T) {
	stat := "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 1000000 500 18446744073709551615"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 3250*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25s", cpu, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -5 6"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
	rss, err := parseStatusRSS([]byte("Name:\tbraid\nVmRSS:\t   12345 kB\nThreads: 4\n"))
	if err != nil || rss != 12345*1024 {
		t.Fatalf("parseStatusRSS = %d, %v", rss, err)
	}
	for _, bad := range []string{"", "VmRSS: 12 MB", "VmRSS: x kB", "VmRSS: -1 kB", "VmRSS:"} {
		if _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q) accepted", bad)
		}
	}
}

func TestCleanEnv(t *testing.T) {
	got := cleanEnv([]string{"PATH=/bin", "http_proxy=x", "HTTPS_PROXY=y", "ALL_PROXY=z", "HOME=/root"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Fatalf("cleanEnv = %q", got)
	}
}

func TestCapBuf(t *testing.T) {
	var b capBuf
	big := make([]byte, maxCapture-10)
	if n, err := b.Write(big); n != len(big) || err != nil {
		t.Fatal(n, err)
	}
	if n, _ := b.Write([]byte("0123456789abcdef")); n != 16 {
		t.Fatalf("short write count %d", n)
	}
	got := b.Bytes()
	if len(got) != maxCapture || string(got[len(got)-10:]) != "0123456789" {
		t.Fatalf("cap not applied: len %d", len(got))
	}
}

func FuzzParseNSName(f *testing.F) {
	f.Add("brd-123-4-client")
	f.Add("brd-99999999999-1-exit")
	f.Add("a-1-1-exit")
	f.Fuzz(func(t *testing.T, s string) {
		p, pid, ok := parseNSName(s)
		if ok && (pid <= 0 || !strings.HasPrefix(s, p+"-")) {
			t.Fatalf("inconsistent parse of %q: %q %d", s, p, pid)
		}
	})
}

func FuzzParseNetnsList(f *testing.F) {
	f.Add([]byte("a (id: 1)\nb\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range parseNetnsList(b) {
			if n == "" || strings.ContainsAny(n, " \t\n") {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1 (a) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 1 1 1"))
	f.Add([]byte("VmRSS:\t 100 kB\n"))
	f.Add([]byte("1 (a)) S 1 1 1 0 -1 0 0 0 0 0 99999999999999999999 5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Fatalf("negative cpu %v", d)
		}
		if r, err := parseStatusRSS(b); err == nil && r < 0 {
			t.Fatalf("negative rss %d", r)
		}
	})
}
