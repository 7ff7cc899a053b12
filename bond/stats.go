package bond

import "time"

// LinkState is a link's health as the scheduler sees it.
type LinkState int32

const (
	LinkDown    LinkState = iota // closed; the caller may redial
	LinkUp                       // carrying data
	LinkStalled                  // unacknowledged data made no progress: not scheduled
)

func (s LinkState) String() string {
	switch s {
	case LinkUp:
		return "up"
	case LinkStalled:
		return "stalled"
	}
	return "down"
}

// LinkStats is a snapshot of one link, read from atomics: taking it never
// waits on the data path.
type LinkStats struct {
	Name        string
	Backup      bool
	State       LinkState
	SRTT        time.Duration // smoothed heartbeat RTT
	Rate        float64       // delivery-rate estimate, bytes/s
	BytesSent   int64         // DATA payload bytes written, resends included
	BytesAcked  int64         // of those, confirmed received by the peer
	BytesResent int64         // resent here after another link stalled or died
	BytesRecv   int64         // DATA payload bytes received
	Stalls      int64         // times this link was declared stalled
	InFlight    int64         // bytes sent and not yet confirmed
}

// Stats is a snapshot of a session.
type Stats struct {
	Links        []LinkStats
	SendQueue    int64 // bytes written but not yet acknowledged by the peer
	ReorderBytes int64 // bytes received out of order, waiting for a gap
	Window       int64 // free receive window advertised to the peer
	DupBytes     int64 // duplicate bytes received and dropped (resends)
}

// Stats returns the session's counters, all read from atomics: taking
// them never waits on the data path.
func (s *Session) Stats() Stats {
	st := Stats{
		SendQueue:    s.stats.sendQueue.Load(),
		ReorderBytes: s.stats.reorderBytes.Load(),
		Window:       s.stats.window.Load(),
		DupBytes:     s.stats.dupBytes.Load(),
	}
	if links := s.stats.links.Load(); links != nil {
		for _, l := range *links {
			st.Links = append(st.Links, l.Stats())
		}
	}
	return st
}

// Stats returns a snapshot of the link.
func (l *Link) Stats() LinkStats {
	c := &l.stats
	return LinkStats{
		Name:        l.name,
		Backup:      l.backup,
		State:       LinkState(c.state.Load()),
		SRTT:        time.Duration(c.srttNanos.Load()),
		Rate:        float64(c.rateBps.Load()),
		BytesSent:   c.bytesSent.Load(),
		BytesAcked:  c.bytesAcked.Load(),
		BytesResent: c.bytesResent.Load(),
		BytesRecv:   c.bytesRecv.Load(),
		Stalls:      c.stalls.Load(),
		InFlight:    c.inflight.Load(),
	}
}
