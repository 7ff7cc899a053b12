package admin

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BRAID_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed: dashboard test skipped (apt-get install -y chromium, or set BRAID_CHROMIUM)")
	return ""
}

// runChromium loads url headless with every background service off, so
// the browser talks only to the test server on loopback.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestDashboardChromium loads the dashboard in headless Chromium against a
// handler with a fake source and checks what the page shows once its
// script ran: every link by name, address and state, the summary, and
// charts fed with the history.
func TestDashboardChromium(t *testing.T) {
	bin := chromium(t)
	src := &fakeSource{snap: clientSnapshot()}
	clk := &fakeClock{t: t0}
	h, err := newHandler(withSource(src), clk.now, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// Four more samples, one second apart, with eth0 moving 1 MB/s each
	// way and wwan0 a quarter of that: a chart with something on it.
	for range 4 {
		src.update(func(s *Snapshot) {
			l := s.Sessions[0].Links
			l[1].BytesSent += 1_000_000
			l[1].BytesRecv += 1_000_000
			l[0].BytesSent += 250_000
			l[0].BytesRecv += 250_000
		})
		clk.add(time.Second)
		h.sample()
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	dom := string(runChromium(t, bin, "--virtual-time-budget=3000", "--dump-dom", srv.URL+"/"))

	for _, want := range []string{
		`<tr data-link="eth0" data-state="up">`,
		`<tr data-link="wwan0" data-state="stalled">`,
		`<tr data-link="wlan0" data-state="down">`,
		`<td class="state state-up">up</td>`,
		`<td class="state state-stalled">stalled (backup)</td>`,
		`<td class="state state-down">down</td>`,
		`src=192.0.2.10 → exit.example:7000`,
		`dev=wwan0 → exit.example:7000`,
		`<li data-link="eth0">`,
		`<li data-link="wwan0">`,
		`<li data-link="wlan0">`,
		`<span id="role">client</span>`,
		"links: 1 up, 1 stalled, 1 down",
		"TX 10.0 Mbit/s · RX 10.0 Mbit/s",
		"SOCKS 3 active, 120 total",
		`<td class="share"><span class="bar" style="width: 48px; background: rgb(53, 114, 198);"></span>80%</td>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "cannot reach braid") {
		t.Error("dashboard reports it cannot reach braid")
	}
	m := regexp.MustCompile(`<canvas id="throughput"[^>]*data-samples="(\d+)"[^>]*data-top="([\d.]+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("throughput chart was not drawn:\n%s", dom)
	}
	if n, _ := strconv.Atoi(m[1]); n < 5 {
		t.Errorf("chart drew %d samples, want the 5 of the history", n)
	}
	if m[2] != "20" { // eth0's 8 + 8 Mbit/s, rounded up to a nice scale
		t.Errorf("chart top %s Mbit/s, want 20", m[2])
	}
	if dir := os.Getenv("BRAID_DASHBOARD_SCREENSHOT"); dir != "" {
		path, _ := filepath.Abs(filepath.Join(dir, "dashboard.png"))
		runChromium(t, bin, "--virtual-time-budget=3000", "--window-size=1100,900", "--screenshot="+path, srv.URL+"/")
		t.Logf("screenshot: %s", path)
	}
}
