package netlab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// echoServer accepts in the exit namespace and echoes every connection
// until the peer half-closes. It stops with the test.
func echoServer(t *testing.T, lab *Lab, addr string) net.Listener {
	t.Helper()
	ln, err := lab.Listen(context.Background(), Exit, nil, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

func port(t *testing.T, ln net.Listener) int {
	t.Helper()
	return ln.Addr().(*net.TCPAddr).Port
}

// roundTrip sends payload over c, half-closes and checks the echo by sha256.
func roundTrip(t *testing.T, c net.Conn, payload []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if want := sha256.Sum256(payload); n != int64(len(payload)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo mismatch: %d bytes, want %d", n, len(payload))
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

func dialFrom(t *testing.T, lab *Lab, src netip.Addr, dst string) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := lab.DialContext(context.Background(), Client, d, "tcp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLabTopology(t *testing.T) {
	lab := NewForTest(t, LinkSpec{RateMbit: 200}, LinkSpec{RateMbit: 200})
	ln := echoServer(t, lab, "0.0.0.0:0")
	p := port(t, ln)
	payload := randBytes(256 << 10)
	for _, k := range lab.Links() {
		// Directly to the link's exit address, and to TargetIP sourced from
		// the link's address: both must ride link k and no other.
		for _, dst := range []netip.Addr{k.ExitIP, TargetIP} {
			before := counters(t, lab)
			roundTrip(t, dialFrom(t, lab, k.ClientIP, netip.AddrPortFrom(dst, uint16(p)).String()), payload)
			after := counters(t, lab)
			for j := range after {
				tx := after[j].TxBytes - before[j].TxBytes
				if j == k.Index && tx < uint64(len(payload)) {
					t.Errorf("to %v via link %d: link %d sent only %d bytes", dst, k.Index, j, tx)
				}
				if j != k.Index && tx > 10000 {
					t.Errorf("to %v via link %d: link %d also carried %d bytes", dst, k.Index, j, tx)
				}
			}
		}
	}
	// tbf on both ends, default route to TargetIP on every link.
	for _, role := range []string{Client, Exit} {
		out, err := exec.Command("tc", "-n", lab.NSName(role), "qdisc", "show").CombinedOutput()
		if err != nil || strings.Count(string(out), "qdisc tbf") != 2 || !strings.Contains(string(out), "rate 200Mbit") {
			t.Errorf("%s qdiscs: %s %v", role, out, err)
		}
	}
	out, _ := exec.Command("ip", "-n", lab.NSName(Client), "route", "show", TargetNet.String()).CombinedOutput()
	if strings.Count(string(out), "via") != 2 {
		t.Errorf("main-table routes to target: %s", out)
	}
}

func counters(t *testing.T, lab *Lab) []Counters {
	t.Helper()
	var cs []Counters
	for _, k := range lab.Links() {
		c, err := k.Counters()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// isTimeout reports whether err is a deadline expiry rather than a reset.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBlackhole(t *testing.T) {
	lab := NewForTest(t, LinkSpec{}, LinkSpec{})
	ln := echoServer(t, lab, "0.0.0.0:0")
	k := lab.Link(0)
	dst := netip.AddrPortFrom(k.ExitIP, uint16(port(t, ln))).String()
	c := dialFrom(t, lab, k.ClientIP, dst)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if err := k.Blackhole(true); err != nil {
		t.Fatal(err)
	}
	if err := k.Blackhole(true); err != nil { // idempotent
		t.Fatal(err)
	}
	// Nothing gets through, and nobody resets the connection: reads time out.
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("write during blackhole: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if n, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read during blackhole = %d, %v; want timeout", n, err)
	}
	d := &net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(k.ClientIP, 0))}
	if nc, err := lab.DialContext(context.Background(), Client, d, "tcp4", dst); !isTimeout(err) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("dial during blackhole: %v; want timeout (no RST)", err)
	}
	// The other link is unaffected.
	k1 := lab.Link(1)
	roundTrip(t, dialFrom(t, lab, k1.ClientIP, netip.AddrPortFrom(k1.ExitIP, uint16(port(t, ln))).String()), []byte("other link"))
	// Lifted: TCP retransmits and the queued bytes arrive intact.
	if err := k.Blackhole(false); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "lost" {
		t.Fatalf("after blackhole: %q %v", buf, err)
	}
	roundTrip(t, dialFrom(t, lab, k.ClientIP, dst), randBytes(64<<10))
}

func TestSetDown(t *testing.T) {
	lab := NewForTest(t, LinkSpec{}, LinkSpec{})
	ln := echoServer(t, lab, "0.0.0.0:0")
	target := netip.AddrPortFrom(TargetIP, uint16(port(t, ln))).String()
	k := lab.Link(0)
	if err := k.SetDown(true); err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(k.ClientIP, 0))}
	if nc, err := lab.DialContext(context.Background(), Client, d, "tcp4", netip.AddrPortFrom(k.ExitIP, uint16(port(t, ln))).String()); err == nil {
		nc.Close()
		t.Fatal("dial over a down link succeeded")
	}
	// Unbound traffic to the target falls over to link 1.
	c, err := lab.DialContext(context.Background(), Client, &net.Dialer{Timeout: 5 * time.Second}, "tcp4", target)
	if err != nil {
		t.Fatalf("fallback route: %v", err)
	}
	roundTrip(t, c, []byte("via link 1"))
	c.Close()
	if err := k.SetDown(false); err != nil {
		t.Fatal(err)
	}
	// Routes are back: sourced from link 0 reaches the target over link 0.
	roundTrip(t, dialFrom(t, lab, k.ClientIP, target), randBytes(32<<10))
}

func TestRelayDelay(t *testing.T) {
	lab := NewForTest(t, LinkSpec{RateMbit: 100, DelayMs: 40}, LinkSpec{RateMbit: 100})
	ln := echoServer(t, lab, "0.0.0.0:0")
	ctx := context.Background()
	ep, err := lab.Link(0).Endpoint(ctx, port(t, ln))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Addr() != lab.Link(0).ExitIP || ep.Port() == uint16(port(t, ln)) {
		t.Fatalf("endpoint %v is not a relay on link 0", ep)
	}
	again, _ := lab.Link(0).Endpoint(ctx, port(t, ln))
	if again != ep {
		t.Fatalf("second Endpoint %v != %v", again, ep)
	}
	if direct, _ := lab.Link(1).Endpoint(ctx, port(t, ln)); direct != netip.AddrPortFrom(lab.Link(1).ExitIP, uint16(port(t, ln))) {
		t.Fatalf("undelayed endpoint %v", direct)
	}
	c := dialFrom(t, lab, lab.Link(0).ClientIP, ep.String())
	// One round trip crosses the delay twice: at least 80 ms, never less.
	buf := make([]byte, 5)
	start := time.Now()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 80*time.Millisecond {
		t.Fatalf("rtt %v through a 40 ms relay", rtt)
	}
	c.Close()
	roundTrip(t, dialFrom(t, lab, lab.Link(0).ClientIP, ep.String()), randBytes(1<<20))
}

func TestRun(t *testing.T) {
	lab := NewForTest(t, LinkSpec{})
	p, err := lab.Run(Exit, "ip", "-o", "-4", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := string(p.Stdout()); !strings.Contains(out, "10.200.0.2/24") || !strings.Contains(out, TargetIP.String()) {
		t.Fatalf("exit ns addresses: %s", out)
	}
	fail, err := lab.Run(Client, "ip", "link", "show", "nosuchdev")
	if err != nil {
		t.Fatal(err)
	}
	if err := fail.Wait(); err == nil || !strings.Contains(err.Error(), "nosuchdev") {
		t.Fatalf("failing command: %v", err)
	}
	sleeper, err := lab.Run(Client, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	u, err := sleeper.Usage()
	if err != nil || u.RSS <= 0 {
		t.Fatalf("usage %+v %v", u, err)
	}
	if err := sleeper.Stop(5 * time.Second); err == nil {
		t.Fatal("SIGTERMed sleep reported success")
	}
	if _, err := lab.Run("nowhere", "true"); !errors.Is(err, ErrNoNamespace) {
		t.Fatalf("unknown ns: %v", err)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	lab := NewForTest(t, LinkSpec{RateMbit: 10, DelayMs: 5})
	ln := echoServer(t, lab, "0.0.0.0:0")
	if _, err := lab.Link(0).Endpoint(context.Background(), port(t, ln)); err != nil {
		t.Fatal(err)
	}
	p, err := lab.Run(Exit, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("process survived Close")
	}
	for _, role := range []string{Client, Exit} {
		if _, err := os.Stat("/run/netns/" + lab.NSName(role)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still there: %v", lab.NSName(role), err)
		}
	}
	if err := lab.Link(0).Blackhole(true); !errors.Is(err, ErrClosed) {
		t.Errorf("blackhole after close: %v", err)
	}
	if err := lab.InNS(Client, func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("InNS after close: %v", err)
	}
}

func TestSweepStale(t *testing.T) {
	NewForTest(t, LinkSpec{}) // skips where namespaces are unavailable
	dead := 0
	for pid := 4_000_000; pid < 4_001_000; pid++ {
		if !pidAlive(pid) {
			dead = pid
			break
		}
	}
	name := fmt.Sprintf("brdt-%d-1-client", dead)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	t.Cleanup(func() { removeNS(context.Background(), name) })
	live := fmt.Sprintf("brdt-%d-1-exit", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", live).CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	t.Cleanup(func() { removeNS(context.Background(), live) })
	sweepStale(nil, "brdt")
	if _, err := os.Stat("/run/netns/" + name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s not swept", name)
	}
	if _, err := os.Stat("/run/netns/" + live); err != nil {
		t.Errorf("live process's namespace %s swept: %v", live, err)
	}
}
