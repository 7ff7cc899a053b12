package admin

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/socks"
)

// Roles of a braid process, as Snapshot.Role and the role label carry
// them.
const (
	RoleClient = "client"
	RoleExit   = "exit"
)

// Source gives the admin handler a view of a running client or exit.
// Snapshot is called at every scrape and every sample, from several
// goroutines, so it must be cheap and safe for concurrent use; the
// adapters below only read atomics.
type Source interface {
	Snapshot() Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Snapshot

// Snapshot calls f.
func (f SourceFunc) Snapshot() Snapshot { return f() }

// Snapshot is everything the admin views show, read at one moment.
type Snapshot struct {
	// Role is RoleClient or RoleExit.
	Role string
	// Sessions are the bond sessions alive now: at most one on a client,
	// one per connected client on an exit.
	Sessions []SessionSnapshot
	// Socks is the SOCKS5 front end's counters; nil on an exit.
	Socks *socks.Stats
	// Redials maps each configured link name to how often it was redialed
	// (client only). A name here that no session lists is shown as a
	// down link, because bond forgets a link once it dies: so a client
	// should list every configured link, with 0 for those never redialed.
	Redials map[string]uint64
	// Addrs maps a link name to a human description of its path (say
	// "dev=wwan0 → exit:7000"), shown beside the name on the dashboard and
	// in `braid status`. Optional; see WithAddrs.
	Addrs map[string]string
}

// SessionSnapshot is one bond session.
type SessionSnapshot struct {
	// ID is the session id in hex (first 8 bytes, as bond.Session's
	// LocalAddr prints it): short, and enough to tell sessions apart.
	ID string
	// SendQueue is bytes written but not yet acknowledged by the peer.
	SendQueue int64
	// ReorderBytes is bytes received out of order, waiting for a gap.
	ReorderBytes int64
	// Window is the free receive window advertised to the peer.
	Window int64
	// Links are the session's live links; a dead link is gone from here.
	Links []bond.LinkStats
}

// sessionSnapshot reads one bond session.
func sessionSnapshot(s *bond.Session) SessionSnapshot {
	st := s.Stats()
	id := s.ID()
	return SessionSnapshot{
		ID:           fmt.Sprintf("%x", id[:8]),
		SendQueue:    st.SendQueue,
		ReorderBytes: st.ReorderBytes,
		Window:       st.Window,
		Links:        st.Links,
	}
}

// ClientSource reads a client: sess returns the current session (nil
// between sessions), srv is the SOCKS5 front end (may be nil) and redials
// returns the per-link redial counts (may be nil; see Snapshot.Redials
// and Links).
func ClientSource(sess func() *bond.Session, srv *socks.Server, redials func() map[string]uint64) Source {
	return SourceFunc(func() Snapshot {
		snap := Snapshot{Role: RoleClient}
		if sess != nil {
			if s := sess(); s != nil {
				snap.Sessions = []SessionSnapshot{sessionSnapshot(s)}
			}
		}
		if srv != nil {
			st := srv.Stats()
			snap.Socks = &st
		}
		if redials != nil {
			snap.Redials = redials()
		}
		return snap
	})
}

// ExitSource reads an exit's sessions. The exit names each link by the
// client's address, so the name is its address too.
func ExitSource(srv *bond.Server) Source {
	return SourceFunc(func() Snapshot {
		snap := Snapshot{Role: RoleExit}
		for _, s := range srv.Sessions() {
			snap.Sessions = append(snap.Sessions, sessionSnapshot(s))
		}
		slices.SortFunc(snap.Sessions, func(a, b SessionSnapshot) int { return compareNatural(a.ID, b.ID) })
		return snap
	})
}

// WithAddrs returns src with Snapshot.Addrs filled from addrs, for a
// client whose link names do not say which path they take.
func WithAddrs(src Source, addrs func() map[string]string) Source {
	return SourceFunc(func() Snapshot {
		snap := src.Snapshot()
		snap.Addrs = addrs()
		return snap
	})
}

// Links records a client's configured links: the path each takes, for
// labels, and how often each was redialed. The client registers every
// link when it starts dialing it and calls Redialed before each further
// attempt; Redials and Addrs feed ClientSource and WithAddrs. The zero
// value is ready to use and it is safe for concurrent use.
type Links struct {
	mu      sync.Mutex
	redials map[string]uint64 // guarded by mu
	addrs   map[string]string // guarded by mu
}

// Register adds a link (again) with its path description; its redial
// count is kept if it was registered before (a new session re-registers).
func (l *Links) Register(name, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.redials == nil {
		l.redials = make(map[string]uint64)
		l.addrs = make(map[string]string)
	}
	if _, ok := l.redials[name]; !ok {
		l.redials[name] = 0
	}
	l.addrs[name] = addr
}

// Redialed counts one more dial of a link after its first.
func (l *Links) Redialed(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.redials == nil {
		l.redials = make(map[string]uint64)
		l.addrs = make(map[string]string)
	}
	l.redials[name]++
}

// Redials returns a copy of the redial counts.
func (l *Links) Redials() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.redials)
}

// Addrs returns a copy of the path descriptions.
func (l *Links) Addrs() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.addrs)
}

// linkRow is one link as every view shows it: a live link from a session,
// or a configured client link that no session has (down).
type linkRow struct {
	Session    string
	Addr       string
	Stats      bond.LinkStats
	Redials    uint64
	HasRedials bool // client links only: the redial metric exists
}

// rows flattens a snapshot into links, sorted by session then name, with
// the client's configured-but-absent links added as down. A name seen
// twice (two sessions on an exit cannot share a remote address, but a
// careless Source might) gets a "~N" suffix so label sets stay unique.
func rows(snap Snapshot) []linkRow {
	var out []linkRow
	seen := make(map[string]int)
	add := func(r linkRow) {
		name := r.Stats.Name
		if n := seen[name]; n > 0 {
			r.Stats.Name = fmt.Sprintf("%s~%d", name, n+1)
		}
		seen[name]++
		out = append(out, r)
	}
	for _, s := range snap.Sessions {
		links := slices.Clone(s.Links)
		slices.SortStableFunc(links, func(a, b bond.LinkStats) int { return compareNatural(a.Name, b.Name) })
		for _, ls := range links {
			r := linkRow{Session: s.ID, Stats: ls, Addr: snap.Addrs[ls.Name]}
			r.Redials, r.HasRedials = snap.Redials[ls.Name]
			add(r)
		}
	}
	var absent []string
	for name := range snap.Redials {
		if seen[name] == 0 {
			absent = append(absent, name)
		}
	}
	slices.SortFunc(absent, compareNatural)
	for _, name := range absent {
		add(linkRow{
			Stats:      bond.LinkStats{Name: name, State: bond.LinkDown},
			Addr:       snap.Addrs[name],
			Redials:    snap.Redials[name],
			HasRedials: true,
		})
	}
	return out
}

// compareNatural orders strings with digit runs compared as numbers, so
// link2 sorts before link10.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := trimZeros(a[:da]), trimZeros(b[:db])
			if len(na) != len(nb) {
				return cmpInt(len(na), len(nb))
			}
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmpInt(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return cmpInt(len(a), len(b))
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
