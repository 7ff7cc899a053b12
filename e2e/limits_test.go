//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdTarget is a target that keeps every connection open until the
// client closes it.
func holdTarget(t *testing.T) *target { return startTarget(t, nil) }

// eventually retries f (every 20 ms) until it succeeds or d passes, and
// returns its last error.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

// connectOK is one CONNECT with a small echo, as an error.
func connectOK(proxy string, tg *target) error {
	c, rep, err := socksConnect(proxy, localDest(tg.Addr()), 10*time.Second)
	if err != nil {
		return err
	}
	if rep != 0 {
		return fmt.Errorf("SOCKS reply %d", rep)
	}
	defer c.Close()
	return echoRoundTrip(c, 3, 1024)
}

// TestLimitClientMaxConns: with --max-conns 4, four connections in their
// handshake fill the client; the fifth is closed at once without a byte
// (documented: no SOCKS reply, the server has not read a request yet),
// and the client logs a warning naming the limit. Once one of the four
// goes away, CONNECTs work again.
func TestLimitClientMaxConns(t *testing.T) {
	const limit = 4
	tg := startTarget(t, echo)
	r := startRig(t, 1, allowLoopback, []string{"--max-conns", strconv.Itoa(limit), "--socks-handshake-timeout", "60s"})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range limit {
		c, err := net.Dial("tcp", r.socks)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte{5, 1, 0})
		var m [2]byte
		if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
			t.Fatalf("held connection: method reply %x, %v", m, err)
		}
	}
	start := time.Now()
	c, err := net.Dial("tcp", r.socks)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(connectRequest(localDest(tg.Addr())))
	got, err := io.ReadAll(c)
	c.Close()
	// Closed with our request unread, the socket may answer with a reset
	// rather than a FIN; either way not a byte comes back.
	if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("over the limit: got %x, %v; want an immediate close without a byte", got, err)
	}
	t.Logf("connection over --max-conns %d closed after %v", limit, time.Since(start).Round(time.Microsecond))
	l := r.client.waitLog(5*time.Second, func(l logLine) bool {
		return l.Level == "WARN" && l.Msg == "socks: connection limit reached, closing new connections"
	})
	if l.Attr("max_conns") != strconv.Itoa(limit) {
		t.Errorf("log line does not name the limit: %s", l.Raw)
	}
	t.Logf("client: %s", l.Raw)
	if tg.accepted.Load() != 0 {
		t.Fatalf("the refused connection reached the target")
	}
	held[0].Close()
	if err := eventually(5*time.Second, func() error { return connectOK(r.socks, tg) }); err != nil {
		t.Fatalf("CONNECT after a slot was freed: %v", err)
	}
}

// TestLimitExitMaxStreams: with --max-streams 3 on the exit, three open
// streams fill the session; the fourth CONNECT gets SOCKS reply 1
// (general failure) and the client logs why; closing one stream frees a
// slot.
func TestLimitExitMaxStreams(t *testing.T) {
	const limit = 3
	tg := holdTarget(t)
	// --max-pending-connects must be given too: its default (256) is
	// refused when above --max-streams.
	r := startRig(t, 1, append([]string{"--max-streams", strconv.Itoa(limit), "--max-pending-connects", strconv.Itoa(limit)},
		allowLoopback...),
		[]string{"--log-level", "debug"})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range limit {
		held = append(held, mustConnect(t, r.socks, localDest(tg.Addr())))
	}
	c, rep, err := socksConnect(r.socks, localDest(tg.Addr()), 10*time.Second)
	if c != nil {
		c.Close()
	}
	if err != nil || rep != 1 {
		t.Fatalf("CONNECT over --max-streams: reply %d, %v; want reply 1", rep, err)
	}
	checkLimitLogs(t, r, "too many streams", "max_streams")
	if n := tg.accepted.Load(); n != limit {
		t.Fatalf("target saw %d connections, want %d", n, limit)
	}
	held[0].Close()
	echoTg := startTarget(t, echo)
	if err := eventually(5*time.Second, func() error { return connectOK(r.socks, echoTg) }); err != nil {
		t.Fatalf("CONNECT after a stream closed: %v", err)
	}
}

// checkLimitLogs: the client's (debug) log explains the refusal with the
// exit's reason, and the exit, at its default log level, warns that the
// limit was hit, naming it by its attribute (max_streams,
// max_pending_connects) as the socks server does with max_conns.
func checkLimitLogs(t *testing.T, r *rig, reason, limitAttr string) {
	t.Helper()
	l, err := r.client.findLog(5*time.Second, func(l logLine) bool {
		return l.Msg == "socks: connect failed" && l.Attr("reply") == "1" && strings.Contains(l.Attr("err"), reason)
	})
	if err != nil {
		t.Errorf("client did not log the refusal (%q): %v", reason, err)
	} else {
		t.Logf("client: %s", l.Raw)
	}
	l, err = r.exit.findLog(5*time.Second, func(l logLine) bool {
		_, ok := l.Attrs[limitAttr]
		return l.Level == "WARN" && ok
	})
	if err != nil {
		t.Errorf("exit did not warn that %s was hit (a WARN line with attribute %s): %v", reason, limitAttr, err)
	} else {
		t.Logf("exit: %s", l.Raw)
	}
}

// blackhole returns a loopback address whose connects hang: a listener
// with a backlog of 0, its one queue slot taken, that never accepts.
func blackhole(t *testing.T) (string, int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Fill the queue; the next connect then hangs.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c2, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c2.Close()
		t.Skip("this kernel accepts connects beyond a full backlog; cannot make a dial hang")
	}
	return addr, port
}

// synSent counts sockets in SYN_SENT towards port (/proc/net/tcp).
func synSent(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[2], want) && f[3] == "02" {
			n++
		}
	}
	return n
}

// TestLimitExitMaxPendingConnects: with --max-pending-connects 2, two
// dials hanging on a black hole fill the exit's dial slots; a third
// CONNECT, to a live target, gets SOCKS reply 1 at once and both sides
// log why; when the hanging dials time out (reply 6), CONNECTs work again.
func TestLimitExitMaxPendingConnects(t *testing.T) {
	const limit = 2
	hole, holePort := blackhole(t)
	tg := startTarget(t, echo)
	r := startRig(t, 1, append([]string{
		"--max-pending-connects", strconv.Itoa(limit), "--dial-timeout", "3s",
	}, allowLoopback...), []string{"--log-level", "debug"})

	type result struct {
		rep byte
		err error
	}
	pending := make(chan result, limit)
	for range limit {
		go func() {
			c, rep, err := socksConnect(r.socks, ipDest("127.0.0.1", uint16(holePort)), 20*time.Second)
			if c != nil {
				c.Close()
			}
			pending <- result{rep, err}
		}()
	}
	if err := eventually(10*time.Second, func() error {
		if n := synSent(holePort); n < limit {
			return fmt.Errorf("%d of %d dials to %s in SYN_SENT", n, limit, hole)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, rep, err := socksConnect(r.socks, localDest(tg.Addr()), 10*time.Second)
	if c != nil {
		c.Close()
	}
	if err != nil || rep != 1 {
		t.Fatalf("CONNECT over --max-pending-connects: reply %d, %v; want reply 1", rep, err)
	}
	t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
	checkLimitLogs(t, r, "too many pending connects", "max_pending_connects")
	if tg.accepted.Load() != 0 {
		t.Fatal("the refused CONNECT reached the target")
	}
	for range limit {
		res := <-pending
		if res.err != nil || res.rep != 6 {
			t.Errorf("hanging dial: reply %d, %v; want 6 (timeout)", res.rep, res.err)
		}
	}
	if err := eventually(5*time.Second, func() error { return connectOK(r.socks, tg) }); err != nil {
		t.Fatalf("CONNECT after the dials timed out: %v", err)
	}
}

// TestLimitIdleTimeout: with --idle-timeout 1s on the exit, a proxied
// connection on which nothing moves is closed after a second: the app
// reads EOF and the target sees its connection end. Traffic in time
// keeps a connection alive.
func TestLimitIdleTimeout(t *testing.T) {
	const idle = time.Second
	closed := make(chan time.Time, 1)
	tg := startTarget(t, func(c net.Conn) {
		io.Copy(c, c) // echo until the exit closes us
		closed <- time.Now()
	})
	r := startRig(t, 1, append([]string{"--idle-timeout", idle.String()}, allowLoopback...), nil)
	c := mustConnect(t, r.socks, localDest(tg.Addr()))
	defer c.Close()
	// Busy for three idle periods: never cut.
	buf := make([]byte, 64)
	var lastMoved time.Time
	for end := time.Now().Add(3 * idle); time.Now().Before(end); {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("busy connection cut: %v", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("busy connection cut: %v", err)
		}
		lastMoved = time.Now()
		select {
		case <-closed:
			t.Fatal("target connection closed while busy")
		case <-time.After(idle / 4): // pacing the traffic, not synchronisation
		}
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	el := time.Since(lastMoved)
	if n != 0 || (err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("idle connection: read %d bytes, %v; want EOF", n, err)
	}
	if el < idle-100*time.Millisecond || el > idle+3*time.Second {
		t.Fatalf("idle connection closed after %v, idle timeout %v", el, idle)
	}
	select {
	case at := <-closed:
		t.Logf("idle connection closed %v after its last byte; the target's after %v", el.Round(time.Millisecond), at.Sub(lastMoved).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the target's connection was not closed")
	}
}
