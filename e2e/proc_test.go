//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logLine is one line a braid process wrote to stderr: a JSON slog record
// (Msg, Level, Attrs filled) or, for anything else (a panic), only Raw.
type logLine struct {
	Raw   string
	Level string
	Msg   string
	Attrs map[string]any
}

// Attr returns attribute k as text ("" if absent).
func (l logLine) Attr(k string) string {
	v, ok := l.Attrs[k]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// proc is a running braid child process with its stderr captured.
type proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	done  chan struct{} // closed once stderr hit EOF and Wait returned
	admin string        // admin listener address, "" if the binary has none

	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed and replaced on every new line
	waitErr error         // set before done is closed
}

// startProc runs `braid args...` with JSON logs and, when the binary
// supports it, an admin listener. It is stopped in t.Cleanup: SIGTERM,
// then SIGKILL after 10 s; a panic or data race in its output fails t.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	args = append(args, "--log-format", "json")
	if !hasFlag(args, "--log-level") {
		args = append(args, "--log-level", "info")
	}
	if adminFlag {
		args = append(args, "--admin", "127.0.0.1:0")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(braidBin, args...)
	cmd.Stderr = pw // an *os.File: no copying goroutine in os/exec
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	go p.readLog(pr)
	t.Cleanup(p.stop)
	if adminFlag {
		l := p.waitLog(15*time.Second, func(l logLine) bool { return l.Msg == "braid: admin listener ready" })
		p.admin = l.Attr("addr")
	}
	return p
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

func (p *proc) readLog(r *os.File) {
	defer close(p.done)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			p.add(strings.TrimRight(s, "\n"))
		}
		if err != nil {
			break
		}
	}
	r.Close()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
}

func (p *proc) add(raw string) {
	l := logLine{Raw: raw}
	var rec map[string]any
	if json.Unmarshal([]byte(raw), &rec) == nil {
		l.Msg, _ = rec["msg"].(string)
		l.Level, _ = rec["level"].(string)
		delete(rec, "msg")
		delete(rec, "level")
		delete(rec, "time")
		l.Attrs = rec
	}
	p.mu.Lock()
	p.lines = append(p.lines, l)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Pid is the child's process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitLog returns the first line (from the start of the log) for which
// match is true, waiting at most d. It fails the test if none comes or the
// process exits first.
func (p *proc) waitLog(d time.Duration, match func(logLine) bool) logLine {
	p.t.Helper()
	l, err := p.findLog(d, match)
	if err != nil {
		p.dump(40)
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return l
}

// findLog is waitLog returning an error instead of failing.
func (p *proc) findLog(d time.Duration, match func(logLine) bool) (logLine, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	seen := 0
	for {
		p.mu.Lock()
		lines, ch := p.lines[seen:], p.changed
		p.mu.Unlock()
		for _, l := range lines {
			if match(l) {
				return l, nil
			}
		}
		seen += len(lines)
		select {
		case <-ch:
		case <-p.done:
			// The last lines may have arrived with the exit: look once more.
			p.mu.Lock()
			lines = p.lines[seen:]
			p.mu.Unlock()
			for _, l := range lines {
				if match(l) {
					return l, nil
				}
			}
			return logLine{}, fmt.Errorf("process exited (%v) before the awaited log line", p.exitErr())
		case <-timer.C:
			return logLine{}, fmt.Errorf("awaited log line did not come within %v", d)
		}
	}
}

// countLog counts the lines so far for which match is true.
func (p *proc) countLog(match func(logLine) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if match(l) {
			n++
		}
	}
	return n
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// dump logs the last n stderr lines of the process, for diagnosis.
func (p *proc) dump(n int) {
	p.mu.Lock()
	lines := p.lines[max(0, len(p.lines)-n):]
	p.mu.Unlock()
	for _, l := range lines {
		p.t.Logf("[%s] %s", p.name, l.Raw)
	}
}

// crashLines are what a dying Go program, or the race detector, prints.
var crashLines = []string{"panic:", "fatal error:", "WARNING: DATA RACE", "SIGSEGV"}

func (p *proc) stop() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.t.Errorf("%s: did not exit within 10 s of SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.mu.Lock()
	var crash []string
	for _, l := range p.lines {
		for _, c := range crashLines {
			if strings.Contains(l.Raw, c) {
				crash = append(crash, l.Raw)
				break
			}
		}
	}
	p.mu.Unlock()
	if len(crash) > 0 {
		p.t.Errorf("%s crashed or raced:\n%s", p.name, strings.Join(crash, "\n"))
		p.dump(200)
	} else if p.t.Failed() {
		p.dump(30)
	}
}

// requireAlive fails the test if the process has exited (crashed).
func (p *proc) requireAlive() {
	p.t.Helper()
	if !p.alive() {
		p.dump(60)
		p.t.Fatalf("%s exited: %v", p.name, p.exitErr())
	}
}

// usage is what /proc (and the admin listener) say about a process.
type usage struct {
	FDs        int
	Threads    int
	RSS        int64 // bytes
	Goroutines int   // -1 without an admin listener
}

func (u usage) String() string {
	g := "n/a"
	if u.Goroutines >= 0 {
		g = strconv.Itoa(u.Goroutines)
	}
	return fmt.Sprintf("fds=%d threads=%d rss=%.1fMiB goroutines=%s", u.FDs, u.Threads, float64(u.RSS)/(1<<20), g)
}

// usage reads the process's file descriptors, threads and resident
// memory from /proc, and its goroutine count from /metrics when the
// binary has an admin listener.
func (p *proc) usage() usage {
	p.t.Helper()
	pid := p.Pid()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	u := usage{FDs: len(ents), Goroutines: -1}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "Threads":
			u.Threads = int(n)
		case "VmRSS":
			u.RSS = n << 10
		}
	}
	// HOOK(go_goroutines): the admin listener (--admin, being added to
	// cmd/braid) exports go_goroutines; until the binary has it, goroutines
	// are not measured and only fds and threads are compared.
	if p.admin != "" {
		g, err := scrapeMetric(p.admin, "go_goroutines")
		if err != nil {
			p.t.Fatalf("%s: %v", p.name, err)
		}
		u.Goroutines = int(g)
	}
	return u
}

// adminClient keeps no idle connections, so no goroutine outlives a scrape.
var adminClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// scrapeMetric returns the value of an unlabelled metric from /metrics.
func scrapeMetric(addr, name string) (float64, error) {
	resp, err := adminClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("metric " + name + " not in /metrics")
}

// waitBaseline polls until the process's fds, threads and goroutines are
// back within slack of base, or d passes; it returns the last reading and
// whether it got there.
func (p *proc) waitBaseline(base usage, fdSlack, goSlack int, d time.Duration) (usage, bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		u := p.usage()
		ok := u.FDs <= base.FDs+fdSlack && (u.Goroutines < 0 || u.Goroutines <= base.Goroutines+goSlack)
		if ok || time.Now().After(deadline) {
			return u, ok
		}
		<-tick.C
	}
}

// exitArgs are the flags of a loopback exit; extra flags follow.
func exitArgs(extra ...string) []string {
	return append([]string{"exit", "--listen", "127.0.0.1:0", "--secret-file", secretFile}, extra...)
}

// startExit runs an exit on a kernel-chosen loopback port and returns it
// with its link address.
func startExit(t testing.TB, extra ...string) (*proc, string) {
	t.Helper()
	p := startProc(t, "exit", exitArgs(extra...)...)
	l := p.waitLog(15*time.Second, func(l logLine) bool { return l.Msg == "braid exit: listening" })
	return p, l.Attr("addr")
}

// startClient runs a client towards exitAddr with a kernel-chosen SOCKS
// port and returns it with the SOCKS address. Without --link or --links
// in extra it uses two links.
func startClient(t testing.TB, exitAddr string, extra ...string) (*proc, string) {
	t.Helper()
	args := []string{"client", "--socks", "127.0.0.1:0", "--exit", exitAddr, "--secret-file", secretFile}
	if !hasFlag(extra, "--link") && !hasFlag(extra, "--links") {
		args = append(args, "--links", "2")
	}
	p := startProc(t, "client", append(args, extra...)...)
	l := p.waitLog(15*time.Second, func(l logLine) bool { return l.Msg == "braid client: SOCKS5 ready" })
	return p, l.Attr("addr")
}

// waitLinks waits until the client reports a bond session with n links.
func waitLinks(t testing.TB, client *proc, n int) {
	t.Helper()
	client.waitLog(20*time.Second, func(l logLine) bool {
		return l.Msg == "bond: link up" && l.Attr("links") == strconv.Itoa(n)
	})
}

// rig is an exit and a client bonded over loopback links.
type rig struct {
	exit, client *proc
	exitAddr     string
	socks        string
}

// startRig runs an exit (with exitExtra) and a client with nLinks plain
// links (with clientExtra), and waits until every link is up.
func startRig(t testing.TB, nLinks int, exitExtra, clientExtra []string) *rig {
	t.Helper()
	ex, exitAddr := startExit(t, exitExtra...)
	cl, socks := startClient(t, exitAddr, append([]string{"--links", strconv.Itoa(nLinks)}, clientExtra...)...)
	waitLinks(t, cl, nLinks)
	return &rig{exit: ex, client: cl, exitAddr: exitAddr, socks: socks}
}

// allowLoopback lets the exit reach the test's targets on 127.0.0.1.
var allowLoopback = []string{"--allow", "127.0.0.0/8"}
