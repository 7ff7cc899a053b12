package admin

import (
	"sync"
	"testing"
	"time"

	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/socks"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeSource is a Source whose snapshot the test sets.
type fakeSource struct {
	mu    sync.Mutex
	snap  Snapshot
	calls int
}

func (f *fakeSource) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.snap
}

func (f *fakeSource) set(s Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

// update changes the snapshot in place.
func (f *fakeSource) update(fn func(*Snapshot)) {
	f.mu.Lock()
	fn(&f.snap)
	f.mu.Unlock()
}

// clientSnapshot is a client with two live links (one up, one stalled
// backup) and one configured link that is down.
func clientSnapshot() Snapshot {
	st := socks.Stats{Active: 3, Total: 120, Rejected: 2, HandshakeFailures: 4, AuthFailures: 1}
	st.Replies[0] = 100
	st.Replies[4] = 7
	st.Replies[5] = 13
	return Snapshot{
		Role: RoleClient,
		Sessions: []SessionSnapshot{{
			ID: "00112233aabbccdd", SendQueue: 65536, ReorderBytes: 4096, Window: 1 << 20,
			Links: []bond.LinkStats{
				{Name: "wwan0", Backup: true, State: bond.LinkStalled, SRTT: 85 * time.Millisecond, Rate: 250000,
					BytesSent: 5000, BytesAcked: 4000, BytesResent: 300, BytesRecv: 7000, Stalls: 2, InFlight: 1000},
				{Name: "eth0", State: bond.LinkUp, SRTT: 12500 * time.Microsecond, Rate: 1.25e6,
					BytesSent: 1000000, BytesAcked: 990000, BytesResent: 2048, BytesRecv: 3000000, Stalls: 0, InFlight: 10000},
			},
		}},
		Socks:   &st,
		Redials: map[string]uint64{"eth0": 1, "wwan0": 4, "wlan0": 9},
		Addrs:   map[string]string{"eth0": "src=192.0.2.10 → exit.example:7000", "wwan0": "dev=wwan0 → exit.example:7000", "wlan0": "dev=wlan0 → exit.example:7000"},
	}
}

// withSource is DefaultConfig reading src.
func withSource(src Source) Config {
	c := DefaultConfig()
	c.Source = src
	return c
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func nowFixed() time.Time { return t0 }
