package admin

import (
	"strconv"
	"time"
)

// Status is the body of /status.json: the latest sample, with rates
// averaged over the sampling interval before it. Field names are stable
// for scripts; new fields may be added.
type Status struct {
	// Role is "client" or "exit".
	Role string `json:"role"`
	// Time is when the sample was taken.
	Time time.Time `json:"time"`
	// IntervalSeconds is the span the rates are averaged over (0 on the
	// first sample, which has no rates).
	IntervalSeconds float64 `json:"interval_s"`
	// TxMbps and RxMbps are the totals over all links, in Mbit/s (10^6
	// bits per second), sent and received by this node.
	TxMbps float64 `json:"tx_mbps"`
	RxMbps float64 `json:"rx_mbps"`
	// Links are every link, live or (client) configured but down, sorted
	// by session and name.
	Links []LinkStatus `json:"links"`
	// Sessions are the bond sessions alive now.
	Sessions []SessionStatus `json:"sessions"`
	// Socks is the client's SOCKS5 front end; absent on an exit.
	Socks *SocksStatus `json:"socks,omitempty"`
}

// LinkStatus is one link in Status.
type LinkStatus struct {
	// Name is the link's name (--link name=, the device, or on an exit
	// the client's address).
	Name string `json:"name"`
	// Addr describes the path the link takes, when the client said so.
	Addr string `json:"addr,omitempty"`
	// Session is the id of the session the link belongs to; empty for a
	// configured link that is down.
	Session string `json:"session,omitempty"`
	// State is "up", "stalled" or "down".
	State string `json:"state"`
	// Backup is true for a link used only while no other is healthy.
	Backup bool `json:"backup"`
	// RTTms is the smoothed heartbeat round-trip time in milliseconds.
	RTTms float64 `json:"rtt_ms"`
	// TxMbps and RxMbps are payload throughput over the last interval,
	// in Mbit/s; TX counts resends, since they use the link too.
	TxMbps float64 `json:"tx_mbps"`
	RxMbps float64 `json:"rx_mbps"`
	// Share is this link's fraction (0..1) of all links' TX+RX over the
	// last interval; 0 for every link when nothing moved.
	Share float64 `json:"share"`
	// SentBytes, ReceivedBytes and ResentBytes are the link's counters
	// since it (re)connected.
	SentBytes     int64 `json:"sent_bytes"`
	ReceivedBytes int64 `json:"received_bytes"`
	ResentBytes   int64 `json:"resent_bytes"`
	// InFlightBytes is sent and not yet confirmed.
	InFlightBytes int64 `json:"inflight_bytes"`
	// Stalls counts the times the link was declared stalled.
	Stalls int64 `json:"stalls"`
	// Redials counts redials of this link (client only).
	Redials uint64 `json:"redials"`
}

// SessionStatus is one session in Status.
type SessionStatus struct {
	ID           string `json:"id"`
	Links        int    `json:"links"`
	SendQueue    int64  `json:"send_queue_bytes"`
	ReorderBytes int64  `json:"reorder_bytes"`
	WindowBytes  int64  `json:"window_bytes"`
}

// SocksStatus is the SOCKS5 front end in Status.
type SocksStatus struct {
	Active   int    `json:"active"`
	Total    uint64 `json:"total"`
	Rejected uint64 `json:"rejected"`
	// Replies counts replies sent by SOCKS5 reply code ("0".."8"); codes
	// never sent are left out.
	Replies map[string]uint64 `json:"replies"`
}

// HistoryPoint is one sample as the dashboard charts it.
type HistoryPoint struct {
	Time   time.Time     `json:"time"`
	TxMbps float64       `json:"tx_mbps"`
	RxMbps float64       `json:"rx_mbps"`
	Links  []HistoryLink `json:"links"`
}

// HistoryLink is one link in a HistoryPoint.
type HistoryLink struct {
	Name   string  `json:"name"`
	State  string  `json:"state"`
	TxMbps float64 `json:"tx_mbps"`
	RxMbps float64 `json:"rx_mbps"`
	Share  float64 `json:"share"`
}

// History is the body of /history.json: the samples kept, oldest first.
type History struct {
	IntervalSeconds float64        `json:"interval_s"`
	Samples         []HistoryPoint `json:"samples"`
}

// counters are what rates are computed from.
type counters struct{ sent, recv int64 }

// linkKey identifies a link across samples: the same name in another
// session is another link.
func linkKey(r linkRow) string { return r.Session + "\x00" + r.Stats.Name }

// buildStatus turns a snapshot into a Status. prev holds the counters of
// the sample dt before (nil on the first sample); the returned map is the
// prev of the next call.
func buildStatus(snap Snapshot, now time.Time, prev map[string]counters, dt time.Duration) (Status, map[string]counters) {
	st := Status{Role: snap.Role, Time: now, Links: []LinkStatus{}, Sessions: []SessionStatus{}}
	if prev != nil && dt > 0 {
		st.IntervalSeconds = dt.Seconds()
	}
	next := make(map[string]counters)
	var total float64
	for _, r := range rows(snap) {
		ls := r.Stats
		l := LinkStatus{
			Name: ls.Name, Addr: r.Addr, Session: r.Session, State: ls.State.String(), Backup: ls.Backup,
			RTTms:     float64(ls.SRTT) / float64(time.Millisecond),
			SentBytes: ls.BytesSent, ReceivedBytes: ls.BytesRecv, ResentBytes: ls.BytesResent,
			InFlightBytes: ls.InFlight, Stalls: ls.Stalls, Redials: r.Redials,
		}
		if r.Session != "" { // a configured link that is down has no counters
			cur := counters{ls.BytesSent, ls.BytesRecv}
			next[linkKey(r)] = cur
			if st.IntervalSeconds > 0 {
				p := prev[linkKey(r)] // a link new since then started from zero
				l.TxMbps = mbps(delta(cur.sent, p.sent), dt)
				l.RxMbps = mbps(delta(cur.recv, p.recv), dt)
			}
		}
		st.TxMbps += l.TxMbps
		st.RxMbps += l.RxMbps
		total += l.TxMbps + l.RxMbps
		st.Links = append(st.Links, l)
	}
	if total > 0 {
		for i := range st.Links {
			st.Links[i].Share = (st.Links[i].TxMbps + st.Links[i].RxMbps) / total
		}
	}
	for _, s := range snap.Sessions {
		st.Sessions = append(st.Sessions, SessionStatus{
			ID: s.ID, Links: len(s.Links), SendQueue: s.SendQueue, ReorderBytes: s.ReorderBytes, WindowBytes: s.Window,
		})
	}
	if ss := snap.Socks; ss != nil {
		st.Socks = &SocksStatus{Active: ss.Active, Total: ss.Total, Rejected: ss.Rejected, Replies: map[string]uint64{}}
		for code, n := range ss.Replies {
			if n > 0 {
				st.Socks.Replies[strconv.Itoa(code)] = n
			}
		}
	}
	return st, next
}

// delta is how much a counter grew; a counter that went down was reset
// (the link reconnected), so all of its value is new.
func delta(cur, prev int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func mbps(bytes int64, dt time.Duration) float64 {
	return float64(bytes) * 8 / 1e6 / dt.Seconds()
}

// historyPoint keeps what the dashboard charts.
func historyPoint(st Status) HistoryPoint {
	p := HistoryPoint{Time: st.Time, TxMbps: st.TxMbps, RxMbps: st.RxMbps, Links: make([]HistoryLink, 0, len(st.Links))}
	for _, l := range st.Links {
		p.Links = append(p.Links, HistoryLink{Name: l.Name, State: l.State, TxMbps: l.TxMbps, RxMbps: l.RxMbps, Share: l.Share})
	}
	return p
}
