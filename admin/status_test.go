package admin

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/braid-proxy/braid/bond"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func findLink(t *testing.T, st Status, name string) LinkStatus {
	t.Helper()
	for _, l := range st.Links {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no link %q in %+v", name, st.Links)
	return LinkStatus{}
}

// TestSamplerRates drives the sampler in fake time: rates come from
// counter deltas over the interval, a counter that drops is a reconnect,
// and history keeps the last History samples.
func TestSamplerRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{snap: Snapshot{
			Role: RoleClient,
			Sessions: []SessionSnapshot{{ID: "s1", Links: []bond.LinkStats{
				{Name: "a", State: bond.LinkUp, BytesSent: 1000, BytesRecv: 1000},
				{Name: "b", State: bond.LinkUp, BytesSent: 1000, BytesRecv: 1000},
			}}},
			Redials: map[string]uint64{"a": 0, "b": 2, "c": 5},
		}}
		cfg := withSource(src)
		cfg.History = 3
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()

		st := h.Status()
		if st.IntervalSeconds != 0 || st.TxMbps != 0 || len(st.Links) != 3 {
			t.Fatalf("first sample: %+v, want no rates and 3 links", st)
		}

		// One second: a sends 1 MB (8 Mbit/s), b receives 250 kB (2 Mbit/s).
		src.update(func(s *Snapshot) {
			s.Sessions[0].Links[0].BytesSent += 1_000_000
			s.Sessions[0].Links[1].BytesRecv += 250_000
		})
		time.Sleep(time.Second)
		synctest.Wait()
		st = h.Status()
		a, b, c := findLink(t, st, "a"), findLink(t, st, "b"), findLink(t, st, "c")
		if st.IntervalSeconds != 1 || !near(a.TxMbps, 8) || a.RxMbps != 0 || b.TxMbps != 0 || !near(b.RxMbps, 2) {
			t.Errorf("rates: interval %v a %+v b %+v", st.IntervalSeconds, a, b)
		}
		if !near(a.Share, 0.8) || !near(b.Share, 0.2) || c.Share != 0 {
			t.Errorf("shares a %v b %v c %v, want 0.8 0.2 0", a.Share, b.Share, c.Share)
		}
		if !near(st.TxMbps, 8) || !near(st.RxMbps, 2) {
			t.Errorf("totals tx %v rx %v, want 8 2", st.TxMbps, st.RxMbps)
		}
		if c.State != "down" || c.Session != "" || c.Redials != 5 || b.Redials != 2 {
			t.Errorf("configured link c %+v / b redials %d", c, b.Redials)
		}

		// a reconnects: its counter restarts and reads 500 kB a second later.
		src.update(func(s *Snapshot) { s.Sessions[0].Links[0].BytesSent = 500_000 })
		time.Sleep(time.Second)
		synctest.Wait()
		st = h.Status()
		if a := findLink(t, st, "a"); !near(a.TxMbps, 4) || !near(a.Share, 1) {
			t.Errorf("after reset: a %+v, want 4 Mbit/s and all the share", a)
		}

		// Nothing moves: rates and shares drop to zero.
		time.Sleep(time.Second)
		synctest.Wait()
		st = h.Status()
		for _, l := range st.Links {
			if l.TxMbps != 0 || l.RxMbps != 0 || l.Share != 0 {
				t.Errorf("idle: %+v", l)
			}
		}

		// History keeps the newest 3 of the 4 samples, one second apart.
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/history.json", nil))
		var hist History
		if err := json.Unmarshal(rec.Body.Bytes(), &hist); err != nil {
			t.Fatal(err)
		}
		if hist.IntervalSeconds != 1 || len(hist.Samples) != 3 {
			t.Fatalf("history: interval %v, %d samples, want 1 and 3", hist.IntervalSeconds, len(hist.Samples))
		}
		for i := 1; i < 3; i++ {
			if d := hist.Samples[i].Time.Sub(hist.Samples[i-1].Time); d != time.Second {
				t.Errorf("samples %d and %d are %v apart", i-1, i, d)
			}
		}
		if !near(hist.Samples[0].Links[0].TxMbps, 8) || hist.Samples[0].Links[0].Name != "a" {
			t.Errorf("oldest kept sample %+v, want a at 8 Mbit/s", hist.Samples[0].Links[0])
		}

		// Close stops the sampler: no more snapshots however long we wait.
		h.Close()
		src.mu.Lock()
		calls := src.calls
		src.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		src.mu.Lock()
		defer src.mu.Unlock()
		if src.calls != calls {
			t.Errorf("sampler read the source %d times after Close", src.calls-calls)
		}
	})
}

// TestStatusJSONShape checks the field names scripts rely on.
func TestStatusJSONShape(t *testing.T) {
	h, err := newHandler(withSource(&fakeSource{snap: clientSnapshot()}), nowFixed, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/status.json", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v in %s", err, rec.Body)
	}
	for _, k := range []string{"role", "time", "interval_s", "tx_mbps", "rx_mbps", "links", "sessions", "socks"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("status lacks %q", k)
		}
	}
	links, _ := doc["links"].([]any)
	if len(links) != 3 {
		t.Fatalf("links: %v", doc["links"])
	}
	var names []string
	for _, l := range links {
		m := l.(map[string]any)
		for _, k := range []string{"name", "addr", "state", "backup", "rtt_ms", "tx_mbps", "rx_mbps", "share", "resent_bytes", "stalls", "redials", "sent_bytes", "received_bytes"} {
			if _, ok := m[k]; !ok {
				t.Errorf("link %v lacks %q", m["name"], k)
			}
		}
		names = append(names, m["name"].(string))
	}
	if !slices.Equal(names, []string{"eth0", "wwan0", "wlan0"}) {
		t.Errorf("link order %v, want live links by name then configured down ones", names)
	}
	eth := links[0].(map[string]any)
	if eth["state"] != "up" || eth["rtt_ms"] != 12.5 || eth["resent_bytes"] != 2048.0 || eth["addr"] != "src=192.0.2.10 → exit.example:7000" {
		t.Errorf("eth0 = %v", eth)
	}
	socks := doc["socks"].(map[string]any)
	if r := socks["replies"].(map[string]any); r["5"] != 13.0 || r["0"] != 100.0 || len(r) != 3 {
		t.Errorf("socks replies %v", r)
	}
	st, err := DecodeStatus(rec.Body)
	if err != nil || st.Role != RoleClient || len(st.Sessions) != 1 || st.Sessions[0].SendQueue != 65536 {
		t.Errorf("DecodeStatus: %+v, %v", st, err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := withSource(&fakeSource{})
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no source":     func(c *Config) { c.Source = nil },
		"fast interval": func(c *Config) { c.Interval = time.Millisecond },
		"slow interval": func(c *Config) { c.Interval = time.Hour },
		"no history":    func(c *Config) { c.History = 0 },
		"long history":  func(c *Config) { c.Interval = time.Minute; c.History = 86400 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestCompareNatural(t *testing.T) {
	in := []string{"link10", "link2", "b", "link1", "a10", "a9", "link02x", ""}
	slices.SortFunc(in, compareNatural)
	want := []string{"", "a9", "a10", "b", "link1", "link2", "link02x", "link10"}
	if !slices.Equal(in, want) {
		t.Errorf("sorted %q, want %q", in, want)
	}
}
