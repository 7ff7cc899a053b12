package admin

import (
	"strconv"

	"github.com/braid-proxy/braid/bond"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions. Counters come from per-link atomics that start at
// zero whenever a link (re)connects, so a redial resets them; Prometheus'
// rate() and increase() treat a drop as a reset, which is the right
// reading.
var (
	linkLabels    = []string{"role", "link"}
	sessionLabels = []string{"role", "session"}

	descLinkUp = prometheus.NewDesc("braid_link_up",
		"1 if the link is up and carrying data, 0 if stalled or down.", linkLabels, nil)
	descLinkState = prometheus.NewDesc("braid_link_state",
		"The link's state: 1 for the current one of up, stalled, down.", append(linkLabels, "state"), nil)
	descLinkBackup = prometheus.NewDesc("braid_link_backup",
		"1 if the link is a backup, used only while no other link is healthy.", linkLabels, nil)
	descLinkRTT = prometheus.NewDesc("braid_link_rtt_seconds",
		"Smoothed heartbeat round-trip time of the link.", linkLabels, nil)
	descLinkRate = prometheus.NewDesc("braid_link_delivery_rate_bytes_per_second",
		"The scheduler's estimate of what the link delivers.", linkLabels, nil)
	descLinkInflight = prometheus.NewDesc("braid_link_inflight_bytes",
		"Bytes sent on the link and not yet confirmed by the peer.", linkLabels, nil)
	descLinkSent = prometheus.NewDesc("braid_link_sent_bytes_total",
		"Payload bytes written to the link, resends included (resets when the link reconnects).", linkLabels, nil)
	descLinkAcked = prometheus.NewDesc("braid_link_acked_bytes_total",
		"Payload bytes sent on the link that the peer confirmed.", linkLabels, nil)
	descLinkRecv = prometheus.NewDesc("braid_link_received_bytes_total",
		"Payload bytes received on the link.", linkLabels, nil)
	descLinkResent = prometheus.NewDesc("braid_link_resent_bytes_total",
		"Bytes resent on this link because another link stalled or died.", linkLabels, nil)
	descLinkStalls = prometheus.NewDesc("braid_link_stalls_total",
		"Times the link was declared stalled.", linkLabels, nil)
	descLinkRedials = prometheus.NewDesc("braid_link_redials_total",
		"Times the client dialed the link again after losing it (client only).", linkLabels, nil)

	descSessions = prometheus.NewDesc("braid_sessions",
		"Bond sessions alive now (0 or 1 on a client, one per client on an exit).", []string{"role"}, nil)
	descSessionQueue = prometheus.NewDesc("braid_session_send_queue_bytes",
		"Bytes written to the session and not yet acknowledged by the peer.", sessionLabels, nil)
	descSessionReorder = prometheus.NewDesc("braid_session_reorder_bytes",
		"Bytes received out of order, waiting for a gap to fill.", sessionLabels, nil)
	descSessionWindow = prometheus.NewDesc("braid_session_receive_window_bytes",
		"Free receive window advertised to the peer.", sessionLabels, nil)

	descSocksActive = prometheus.NewDesc("braid_socks_connections_active",
		"SOCKS5 client connections open now.", nil, nil)
	descSocksTotal = prometheus.NewDesc("braid_socks_connections_total",
		"SOCKS5 client connections accepted and served.", nil, nil)
	descSocksRejected = prometheus.NewDesc("braid_socks_rejected_total",
		"SOCKS5 connections closed at once because the connection limit was reached.", nil, nil)
	descSocksHandshake = prometheus.NewDesc("braid_socks_handshake_failures_total",
		"SOCKS5 connections that ended before a supported request was parsed.", nil, nil)
	descSocksAuth = prometheus.NewDesc("braid_socks_auth_failures_total",
		"SOCKS5 username/password logins refused.", nil, nil)
	descSocksReplies = prometheus.NewDesc("braid_socks_replies_total",
		"SOCKS5 replies sent, by reply code (0 succeeded, 1 general failure, 2 not allowed, 3 network unreachable, 4 host unreachable, 5 refused, 6 TTL expired, 7 command not supported, 8 address type not supported).",
		[]string{"code"}, nil)
)

// linkStates are the values of braid_link_state's state label.
var linkStates = []bond.LinkState{bond.LinkUp, bond.LinkStalled, bond.LinkDown}

// collector turns a Source's Snapshot into metrics at scrape time.
type collector struct{ src Source }

// NewCollector returns a prometheus.Collector reading src at every
// scrape, for callers that keep their own registry.
func NewCollector(src Source) prometheus.Collector { return collector{src} }

// Describe sends every metric's description.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descLinkUp, descLinkState, descLinkBackup, descLinkRTT, descLinkRate, descLinkInflight,
		descLinkSent, descLinkAcked, descLinkRecv, descLinkResent, descLinkStalls, descLinkRedials,
		descSessions, descSessionQueue, descSessionReorder, descSessionWindow,
		descSocksActive, descSocksTotal, descSocksRejected, descSocksHandshake, descSocksAuth, descSocksReplies,
	} {
		ch <- d
	}
}

// Collect reads one Snapshot and sends its metrics.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.src.Snapshot()
	role := snap.Role
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, r := range rows(snap) {
		ls := r.Stats
		name := ls.Name
		gauge(descLinkUp, b2f(ls.State == bond.LinkUp), role, name)
		for _, st := range linkStates {
			gauge(descLinkState, b2f(ls.State == st), role, name, st.String())
		}
		gauge(descLinkBackup, b2f(ls.Backup), role, name)
		gauge(descLinkRTT, ls.SRTT.Seconds(), role, name)
		gauge(descLinkRate, ls.Rate, role, name)
		gauge(descLinkInflight, float64(ls.InFlight), role, name)
		counter(descLinkSent, float64(ls.BytesSent), role, name)
		counter(descLinkAcked, float64(ls.BytesAcked), role, name)
		counter(descLinkRecv, float64(ls.BytesRecv), role, name)
		counter(descLinkResent, float64(ls.BytesResent), role, name)
		counter(descLinkStalls, float64(ls.Stalls), role, name)
		if r.HasRedials {
			counter(descLinkRedials, float64(r.Redials), role, name)
		}
	}
	gauge(descSessions, float64(len(snap.Sessions)), role)
	seen := make(map[string]bool, len(snap.Sessions))
	for _, s := range snap.Sessions {
		if seen[s.ID] { // a duplicate label set would fail the whole scrape
			continue
		}
		seen[s.ID] = true
		gauge(descSessionQueue, float64(s.SendQueue), role, s.ID)
		gauge(descSessionReorder, float64(s.ReorderBytes), role, s.ID)
		gauge(descSessionWindow, float64(s.Window), role, s.ID)
	}
	if st := snap.Socks; st != nil {
		gauge(descSocksActive, float64(st.Active))
		counter(descSocksTotal, float64(st.Total))
		counter(descSocksRejected, float64(st.Rejected))
		counter(descSocksHandshake, float64(st.HandshakeFailures))
		counter(descSocksAuth, float64(st.AuthFailures))
		for code, n := range st.Replies {
			counter(descSocksReplies, float64(n), strconv.Itoa(code))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
