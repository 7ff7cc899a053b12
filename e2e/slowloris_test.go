//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slowlorisCount is how many stalled connections each slowloris test
// opens; BRAID_E2E_SLOWLORIS overrides it (the issue asks for 5,000).
func slowlorisCount() int {
	if n, err := strconv.Atoi(os.Getenv("BRAID_E2E_SLOWLORIS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 500
	}
	return 5000
}

// slowlorisResult is what happened to the stalled connections.
type slowlorisResult struct {
	opened  int
	lasted  []time.Duration // per connection: from its one byte to the server's close
	open    int             // still open when the test gave up
	gotData int             // connections that received any byte
	dialErr error
}

func (r slowlorisResult) String() string {
	if len(r.lasted) == 0 {
		return fmt.Sprintf("opened %d, none closed", r.opened)
	}
	s := slices.Clone(r.lasted)
	slices.Sort(s)
	return fmt.Sprintf("opened %d, closed %d (min %v, median %v, p99 %v, max %v), still open %d, got data %d",
		r.opened, len(s), s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond),
		s[len(s)*99/100].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), r.open, r.gotData)
}

// slowloris opens n connections to addr (at most 200 dials in flight),
// sends one byte on each and stalls, and records when the server closes
// each one; it gives up after giveUp and closes the rest. first is the
// byte sent. Each connection is watched by its own goroutine: that is
// cheap in the test and keeps the measurement free of polling.
func slowloris(ctx context.Context, addr string, n int, first byte, giveUp time.Duration) slowlorisResult {
	var (
		mu     sync.Mutex
		res    = slowlorisResult{}
		wg     sync.WaitGroup
		opened atomic.Int64
		conns  = make([]net.Conn, n)
	)
	stop := make(chan struct{})
	limitConcurrency(n, 200, func(i int) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			mu.Lock()
			res.dialErr = err
			mu.Unlock()
			return
		}
		conns[i] = c
		opened.Add(1)
		sent := time.Now()
		if _, err := c.Write([]byte{first}); err != nil {
			c.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			k, err := c.Read(buf)
			if k > 0 {
				mu.Lock()
				res.gotData++
				mu.Unlock()
				_, err = io.Copy(io.Discard, c)
			}
			select {
			case <-stop:
				return // closed by us
			default:
			}
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				mu.Lock()
				res.lasted = append(res.lasted, time.Since(sent))
				mu.Unlock()
			}
		}()
	})
	res.opened = int(opened.Load())
	// Wait for every watcher, or give up.
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	timer := time.NewTimer(giveUp)
	defer timer.Stop()
	select {
	case <-all:
	case <-timer.C:
	case <-ctx.Done():
	}
	close(stop)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	<-all
	mu.Lock()
	defer mu.Unlock()
	res.open = res.opened - len(res.lasted)
	return res
}

// keepConnecting makes real CONNECTs with a 64 KiB echo through proxy to
// tg, one after the other, until stop; it returns how many succeeded and
// the first failure.
// realResult is what keepConnecting achieved.
type realResult struct {
	ok  int
	err error
}

// connectDuring runs keepConnecting in the background; the returned stop
// ends it and reports what it achieved.
func connectDuring(proxy string, tg *target) (stop func() realResult) {
	quit := make(chan struct{})
	done := make(chan realResult, 1)
	go func() {
		ok, err := keepConnecting(proxy, tg, quit)
		done <- realResult{ok, err}
	}()
	return func() realResult {
		close(quit)
		return <-done
	}
}

func keepConnecting(proxy string, tg *target, stop <-chan struct{}) (ok int, firstErr error) {
	for i := uint64(0); ; i++ {
		select {
		case <-stop:
			return ok, firstErr
		default:
		}
		c, rep, err := socksConnect(proxy, localDest(tg.Addr()), 10*time.Second)
		if err == nil && rep != 0 {
			err = fmt.Errorf("SOCKS reply %d", rep)
		}
		if err == nil {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			err = echoRoundTrip(c, i, 64<<10)
			c.Close()
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("CONNECT %d: %w", i, err)
			}
			continue
		}
		ok++
	}
}

// TestSlowlorisSOCKS: 5,000 connections to the client's SOCKS port each
// send one byte (a greeting's version) and stall. Every one is closed by
// the 2 s handshake deadline, and real CONNECTs keep working meanwhile.
func TestSlowlorisSOCKS(t *testing.T) {
	const deadline = 2 * time.Second
	tg := startTarget(t, echo)
	r := startRig(t, 2, allowLoopback, []string{"--socks-handshake-timeout", deadline.String()})
	base := r.client.usage()

	stopReal := connectDuring(r.socks, tg)
	n := slowlorisCount()
	res := slowloris(context.Background(), r.socks, n, 5, deadline+20*time.Second)
	rr := stopReal()
	t.Logf("slowloris on SOCKS (%d conns, deadline %v): %v", n, deadline, res)
	t.Logf("real CONNECTs during the attack: %d ok, first error %v", rr.ok, rr.err)

	r.client.requireAlive()
	if res.dialErr != nil || res.opened != n {
		t.Fatalf("opened %d of %d: %v", res.opened, n, res.dialErr)
	}
	if res.open > 0 || res.gotData > 0 {
		t.Fatalf("%d connections outlived the handshake deadline, %d got bytes back", res.open, res.gotData)
	}
	// Each is timed from its byte, after the server's accept; allow for
	// a loaded two-core machine.
	if m := slices.Max(res.lasted); m > deadline+3*time.Second {
		t.Fatalf("a connection lasted %v, deadline %v", m, deadline)
	}
	if rr.err != nil || rr.ok == 0 {
		t.Fatalf("real CONNECTs failed during the attack: %d ok, %v", rr.ok, rr.err)
	}
	after, ok := r.client.waitBaseline(base, 2, 5, 15*time.Second)
	t.Logf("client before %v, after %v", base, after)
	if !ok {
		t.Fatal("client did not return to its baseline")
	}
}

// TestSlowlorisExitLinks: 5,000 connections to the exit's link port each
// send one byte (a TLS record type) and stall. The exit handshakes at most
// 1,024 at a time (link.Config.MaxPending), each under the 2 s deadline,
// so all are closed within about five deadlines; CONNECTs over the
// client's established links keep working throughout, and the exit says
// nothing to any of them.
func TestSlowlorisExitLinks(t *testing.T) {
	const deadline = 2 * time.Second
	const maxPending = 1024 // link.DefaultConfig().MaxPending
	tg := startTarget(t, echo)
	r := startRig(t, 2, append([]string{"--handshake-timeout", deadline.String()}, allowLoopback...), nil)
	base := r.exit.usage()

	stopReal := connectDuring(r.socks, tg)
	n := slowlorisCount()
	waves := (n + maxPending - 1) / maxPending
	res := slowloris(context.Background(), r.exitAddr, n, 0x16, time.Duration(waves+10)*deadline)
	rr := stopReal()
	t.Logf("slowloris on the exit (%d conns, deadline %v, %d waves): %v", n, deadline, waves, res)
	t.Logf("real CONNECTs during the attack: %d ok, first error %v", rr.ok, rr.err)

	r.exit.requireAlive()
	r.client.requireAlive()
	if res.dialErr != nil || res.opened != n {
		t.Fatalf("opened %d of %d: %v", res.opened, n, res.dialErr)
	}
	if res.open > 0 || res.gotData > 0 {
		t.Fatalf("%d connections never closed, %d got bytes back", res.open, res.gotData)
	}
	// A connection waits in the kernel's queue until a handshake slot is
	// free, then gets the full deadline: waves of deadline, plus one for
	// the stagger of a loaded machine.
	if m, lim := slices.Max(res.lasted), time.Duration(waves+1)*deadline+5*time.Second; m > lim {
		t.Fatalf("a connection lasted %v; %d waves of %v allow %v", m, waves, deadline, lim)
	}
	if rr.err != nil || rr.ok == 0 {
		t.Fatalf("real CONNECTs failed during the attack: %d ok, %v", rr.ok, rr.err)
	}
	after, ok := r.exit.waitBaseline(base, 2, 5, 15*time.Second)
	t.Logf("exit before %v, after %v", base, after)
	if !ok {
		t.Fatal("exit did not return to its baseline")
	}
}
