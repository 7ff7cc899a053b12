package admin

import (
	"bytes"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/braid-proxy/braid/bond"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The helpers below do what prometheus/testutil's CollectAndCompare does
// (testutil itself needs a module this repository does not carry): gather
// through a pedantic registry, which also checks descriptions and label
// consistency, and compare canonical text expositions.

// gather collects c through a pedantic registry.
func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs
}

// exposition renders the families named (all if none) as sorted text.
func exposition(t *testing.T, mfs []*dto.MetricFamily, names ...string) string {
	t.Helper()
	sort.Slice(mfs, func(i, j int) bool { return mfs[i].GetName() < mfs[j].GetName() })
	var buf bytes.Buffer
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// compareMetrics fails unless c produces exactly want for the names.
func compareMetrics(t *testing.T, c prometheus.Collector, want string, names ...string) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(strings.NewReader(want))
	if err != nil {
		t.Fatalf("parse expected: %v", err)
	}
	var wantMFs []*dto.MetricFamily
	for _, mf := range parsed {
		wantMFs = append(wantMFs, mf)
	}
	got, exp := exposition(t, gather(t, c), names...), exposition(t, wantMFs, names...)
	if got != exp {
		t.Errorf("metrics differ\n--- got\n%s\n--- want\n%s", got, exp)
	}
}

func countMetrics(t *testing.T, c prometheus.Collector) int {
	n := 0
	for _, mf := range gather(t, c) {
		n += len(mf.GetMetric())
	}
	return n
}

func TestCollectorClient(t *testing.T) {
	c := NewCollector(&fakeSource{snap: clientSnapshot()})
	want := `
# HELP braid_link_up 1 if the link is up and carrying data, 0 if stalled or down.
# TYPE braid_link_up gauge
braid_link_up{link="eth0",role="client"} 1
braid_link_up{link="wlan0",role="client"} 0
braid_link_up{link="wwan0",role="client"} 0
# HELP braid_link_state The link's state: 1 for the current one of up, stalled, down.
# TYPE braid_link_state gauge
braid_link_state{link="eth0",role="client",state="down"} 0
braid_link_state{link="eth0",role="client",state="stalled"} 0
braid_link_state{link="eth0",role="client",state="up"} 1
braid_link_state{link="wlan0",role="client",state="down"} 1
braid_link_state{link="wlan0",role="client",state="stalled"} 0
braid_link_state{link="wlan0",role="client",state="up"} 0
braid_link_state{link="wwan0",role="client",state="down"} 0
braid_link_state{link="wwan0",role="client",state="stalled"} 1
braid_link_state{link="wwan0",role="client",state="up"} 0
# HELP braid_link_backup 1 if the link is a backup, used only while no other link is healthy.
# TYPE braid_link_backup gauge
braid_link_backup{link="eth0",role="client"} 0
braid_link_backup{link="wlan0",role="client"} 0
braid_link_backup{link="wwan0",role="client"} 1
# HELP braid_link_rtt_seconds Smoothed heartbeat round-trip time of the link.
# TYPE braid_link_rtt_seconds gauge
braid_link_rtt_seconds{link="eth0",role="client"} 0.0125
braid_link_rtt_seconds{link="wlan0",role="client"} 0
braid_link_rtt_seconds{link="wwan0",role="client"} 0.085
# HELP braid_link_sent_bytes_total Payload bytes written to the link, resends included (resets when the link reconnects).
# TYPE braid_link_sent_bytes_total counter
braid_link_sent_bytes_total{link="eth0",role="client"} 1e+06
braid_link_sent_bytes_total{link="wlan0",role="client"} 0
braid_link_sent_bytes_total{link="wwan0",role="client"} 5000
# HELP braid_link_received_bytes_total Payload bytes received on the link.
# TYPE braid_link_received_bytes_total counter
braid_link_received_bytes_total{link="eth0",role="client"} 3e+06
braid_link_received_bytes_total{link="wlan0",role="client"} 0
braid_link_received_bytes_total{link="wwan0",role="client"} 7000
# HELP braid_link_resent_bytes_total Bytes resent on this link because another link stalled or died.
# TYPE braid_link_resent_bytes_total counter
braid_link_resent_bytes_total{link="eth0",role="client"} 2048
braid_link_resent_bytes_total{link="wlan0",role="client"} 0
braid_link_resent_bytes_total{link="wwan0",role="client"} 300
# HELP braid_link_stalls_total Times the link was declared stalled.
# TYPE braid_link_stalls_total counter
braid_link_stalls_total{link="eth0",role="client"} 0
braid_link_stalls_total{link="wlan0",role="client"} 0
braid_link_stalls_total{link="wwan0",role="client"} 2
# HELP braid_link_redials_total Times the client dialed the link again after losing it (client only).
# TYPE braid_link_redials_total counter
braid_link_redials_total{link="eth0",role="client"} 1
braid_link_redials_total{link="wlan0",role="client"} 9
braid_link_redials_total{link="wwan0",role="client"} 4
# HELP braid_sessions Bond sessions alive now (0 or 1 on a client, one per client on an exit).
# TYPE braid_sessions gauge
braid_sessions{role="client"} 1
# HELP braid_session_send_queue_bytes Bytes written to the session and not yet acknowledged by the peer.
# TYPE braid_session_send_queue_bytes gauge
braid_session_send_queue_bytes{role="client",session="00112233aabbccdd"} 65536
# HELP braid_session_reorder_bytes Bytes received out of order, waiting for a gap to fill.
# TYPE braid_session_reorder_bytes gauge
braid_session_reorder_bytes{role="client",session="00112233aabbccdd"} 4096
# HELP braid_socks_connections_active SOCKS5 client connections open now.
# TYPE braid_socks_connections_active gauge
braid_socks_connections_active 3
# HELP braid_socks_connections_total SOCKS5 client connections accepted and served.
# TYPE braid_socks_connections_total counter
braid_socks_connections_total 120
# HELP braid_socks_rejected_total SOCKS5 connections closed at once because the connection limit was reached.
# TYPE braid_socks_rejected_total counter
braid_socks_rejected_total 2
# HELP braid_socks_replies_total SOCKS5 replies sent, by reply code (0 succeeded, 1 general failure, 2 not allowed, 3 network unreachable, 4 host unreachable, 5 refused, 6 TTL expired, 7 command not supported, 8 address type not supported).
# TYPE braid_socks_replies_total counter
braid_socks_replies_total{code="0"} 100
braid_socks_replies_total{code="1"} 0
braid_socks_replies_total{code="2"} 0
braid_socks_replies_total{code="3"} 0
braid_socks_replies_total{code="4"} 7
braid_socks_replies_total{code="5"} 13
braid_socks_replies_total{code="6"} 0
braid_socks_replies_total{code="7"} 0
braid_socks_replies_total{code="8"} 0
`
	names := []string{
		"braid_link_up", "braid_link_state", "braid_link_backup", "braid_link_rtt_seconds",
		"braid_link_sent_bytes_total", "braid_link_received_bytes_total", "braid_link_resent_bytes_total",
		"braid_link_stalls_total", "braid_link_redials_total", "braid_sessions",
		"braid_session_send_queue_bytes", "braid_session_reorder_bytes",
		"braid_socks_connections_active", "braid_socks_connections_total", "braid_socks_rejected_total",
		"braid_socks_replies_total",
	}
	compareMetrics(t, c, want, names...)
	// 3 links × (up, 3 states, backup, rtt, rate, inflight, sent, acked,
	// recv, resent, stalls, redials) + sessions + 3 session gauges + 5
	// socks + 9 replies.
	if n, want := countMetrics(t, c), 3*14+1+3+5+9; n != want {
		t.Errorf("collected %d metrics, want %d", n, want)
	}
	problems, err := promlint.NewWithMetricFamilies(gather(t, c)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorExit(t *testing.T) {
	snap := Snapshot{
		Role: RoleExit,
		Sessions: []SessionSnapshot{
			{ID: "aa", Links: []bond.LinkStats{{Name: "198.51.100.7:40001", State: bond.LinkUp, BytesSent: 10}}},
			// A second session listing the same name must not break the scrape.
			{ID: "bb", Links: []bond.LinkStats{{Name: "198.51.100.7:40001", State: bond.LinkDown, BytesSent: 20}}},
		},
	}
	c := NewCollector(&fakeSource{snap: snap})
	want := `
# HELP braid_link_sent_bytes_total Payload bytes written to the link, resends included (resets when the link reconnects).
# TYPE braid_link_sent_bytes_total counter
braid_link_sent_bytes_total{link="198.51.100.7:40001",role="exit"} 10
braid_link_sent_bytes_total{link="198.51.100.7:40001~2",role="exit"} 20
# HELP braid_sessions Bond sessions alive now (0 or 1 on a client, one per client on an exit).
# TYPE braid_sessions gauge
braid_sessions{role="exit"} 2
`
	compareMetrics(t, c, want, "braid_link_sent_bytes_total", "braid_sessions", "braid_link_redials_total", "braid_socks_connections_total")
}

// TestMetricsEndpoint scrapes the handler as Prometheus would: braid
// metrics plus the Go and process collectors.
func TestMetricsEndpoint(t *testing.T) {
	h, err := newHandler(withSource(&fakeSource{snap: clientSnapshot()}), nowFixed, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`braid_link_up{link="eth0",role="client"} 1`,
		`braid_socks_replies_total{code="5"} 13`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
