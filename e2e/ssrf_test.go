//go:build linux

package e2e

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ssrfCases are destinations the default exit policy must refuse with
// SOCKS reply 2, in every address type a client can use. The port is
// filled in by the test.
func ssrfCases(port uint16) []socksAddr {
	var out []socksAddr
	for _, ip := range []string{
		"127.0.0.1", "127.255.255.254", "0.0.0.0",
		"10.0.0.1", "10.255.255.254",
		"172.16.0.1", "172.31.255.254",
		"192.168.0.1", "192.168.255.254",
		"100.64.0.1", "100.100.100.200", "100.127.255.254",
		"169.254.169.254", "169.254.0.1",
		"224.0.0.1", "255.255.255.255",
		"::1", "::", "fd00:ec2::254", "fc00::1", "fe80::1", "febf::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
		"64:ff9b::7f00:1", "2002:7f00:1::1",
	} {
		out = append(out, ipDest(ip, port))
	}
	for _, name := range []string{
		// IP literals sent as names, and the legacy numeric forms that a
		// resolver would otherwise turn into addresses.
		"127.0.0.1", "0.0.0.0", "10.0.0.1", "172.16.0.1", "192.168.0.1",
		"100.100.100.200", "169.254.169.254", "224.0.0.1",
		"::1", "fd00:ec2::254", "fe80::1", "::ffff:127.0.0.1",
		"2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1",
		"017700000001", "2852039166", // 169.254.169.254 as a number
	} {
		out = append(out, nameDest(name, port))
	}
	return out
}

// loopbackName returns a host name that /etc/hosts maps to a loopback
// address (so resolving it needs no DNS), or "".
func loopbackName() string {
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(f) < 2 {
			continue
		}
		if a, err := netip.ParseAddr(f[0]); err != nil || !a.IsLoopback() {
			continue
		}
		for _, n := range f[1:] {
			if strings.EqualFold(n, "localhost") {
				return n
			}
		}
	}
	return ""
}

// TestSSRFDefaultPolicy: with the exit's default policy every internal
// destination, in IPv4, IPv6 and domain form (numeric tricks included),
// is refused with SOCKS reply 2, and nothing is dialed: listeners on
// 127.0.0.1 and ::1 at the requested port see no connection, and, where
// strace is installed, the exit makes no connect(2) to any IP address at
// all. "localhost" is sent unresolved and resolved (from /etc/hosts, no
// DNS) and refused by the exit.
func TestSSRFDefaultPolicy(t *testing.T) {
	// Listeners where a loopback dial would land: if the policy failed
	// open, they would count it.
	v4 := startTarget(t, nil)
	port := uint16(v4.Addr().(*net.TCPAddr).Port)
	v6 := startTargetOn(t, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port))), nil)

	r := startRig(t, 2, []string{"--log-level", "debug"}, []string{"--log-level", "debug"})
	tr := traceConnects(t, r.exit.Pid())

	cases := ssrfCases(port)
	name := loopbackName()
	if name != "" {
		cases = append(cases, nameDest(name, port))
	} else {
		t.Log("no loopback name in /etc/hosts: skipping the name case rather than asking DNS")
	}
	for _, dst := range cases {
		c, rep, err := socksConnect(r.socks, dst, 15*time.Second)
		if c != nil {
			c.Close()
		}
		if err != nil || rep != 2 {
			t.Errorf("%v: reply %d, err %v; want reply 2 (not allowed)", dst, rep, err)
		}
	}
	var connects []string
	if tr != nil {
		connects = tr.stop()
	}
	if n := v4.accepted.Load() + v6.accepted.Load(); n != 0 {
		t.Errorf("loopback listeners saw %d connections", n)
	}
	for _, l := range connects {
		t.Errorf("the exit called connect(2): %s", l)
	}
	t.Logf("%d destinations refused with reply 2; strace connect(2) calls to IP addresses: %d (traced: %v)",
		len(cases), len(connects), tr != nil)

	if name != "" {
		// The exit, not the client, resolved the name: the client
		// forwarded it as a name and the exit's policy names the
		// address it resolved to.
		l, err := r.exit.findLog(5*time.Second, func(l logLine) bool {
			return l.Msg == "egress: destination refused" && l.Attr("host") == name
		})
		if err != nil {
			t.Fatalf("exit did not log refusing %q: %v", name, err)
		}
		if !strings.Contains(l.Attr("err"), "127.") && !strings.Contains(l.Attr("err"), "::1") {
			t.Errorf("exit refusal of %q does not name a resolved loopback address: %s", name, l.Raw)
		}
		t.Logf("exit: %s", l.Raw)
	}
	r.exit.requireAlive()
	r.client.requireAlive()
}

// tracer records the connect(2) calls of a running process with strace.
type tracer struct {
	cmd  *exec.Cmd
	out  string
	done chan struct{}
}

// traceConnects attaches strace to pid and returns once every thread is
// traced; nil (and a log line) if strace is not installed or cannot
// attach.
func traceConnects(t *testing.T, pid int) *tracer {
	t.Helper()
	path, err := exec.LookPath("strace")
	if err != nil {
		t.Log("strace not installed: connect(2) calls are not traced (apt-get install strace)")
		return nil
	}
	tr := &tracer{out: filepath.Join(t.TempDir(), "strace.txt"), done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tr.cmd = exec.Command(path, "-f", "-e", "trace=connect", "-o", tr.out, "-p", strconv.Itoa(pid))
	tr.cmd.Stderr = pw
	if err := tr.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Logf("strace: %v: connect(2) calls are not traced", err)
		return nil
	}
	pw.Close()
	attached := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(tr.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			// "Process N attached with M threads": strace has seized
			// every thread before it prints this.
			if strings.Contains(sc.Text(), "attached") {
				once.Do(func() { close(attached) })
			}
		}
		pr.Close()
		tr.cmd.Wait()
	}()
	t.Cleanup(func() { tr.stop() })
	select {
	case <-attached:
		return tr
	case <-tr.done:
		t.Log("strace exited before attaching: connect(2) calls are not traced")
		return nil
	case <-time.After(10 * time.Second):
		tr.stop()
		t.Log("strace did not attach within 10 s: connect(2) calls are not traced")
		return nil
	}
}

// stop detaches strace and returns the connect(2) calls it saw to IPv4
// or IPv6 addresses (a Unix socket, e.g. to nscd, is no network traffic).
func (tr *tracer) stop() []string {
	select {
	case <-tr.done:
	default:
		tr.cmd.Process.Signal(syscall.SIGINT)
		<-tr.done
	}
	b, _ := os.ReadFile(tr.out)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "connect(") && (strings.Contains(l, "AF_INET")) {
			out = append(out, l)
		}
	}
	return out
}

// TestTracerSeesExitDials is the control for TestSSRFDefaultPolicy's
// strace check: with loopback allowed, one CONNECT does show up as a
// connect(2) to the target.
func TestTracerSeesExitDials(t *testing.T) {
	tg := startTarget(t, echo)
	r := startRig(t, 1, allowLoopback, nil)
	tr := traceConnects(t, r.exit.Pid())
	if tr == nil {
		t.Skip("strace unavailable")
	}
	c := mustConnect(t, r.socks, localDest(tg.Addr()))
	if err := echoRoundTrip(c, 1, 1024); err != nil {
		t.Fatal(err)
	}
	c.Close()
	connects := tr.stop()
	port := strconv.Itoa(tg.Addr().(*net.TCPAddr).Port)
	for _, l := range connects {
		if strings.Contains(l, "htons("+port+")") {
			return
		}
	}
	t.Fatalf("strace did not see the exit dial port %s: %q", port, connects)
}
