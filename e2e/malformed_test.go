//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// malformedCount is how many malformed handshakes TestMalformedSOCKSHandshakes
// sends; BRAID_E2E_MALFORMED overrides it (the issue asks for 100,000).
func malformedCount() int {
	if n, err := strconv.Atoi(os.Getenv("BRAID_E2E_MALFORMED")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 5000
	}
	return 100000
}

// malformed returns the i-th malformed client input: every kind of broken
// greeting and request, plus random bytes. It never returns a complete,
// valid CONNECT (checked by validConnect), so nothing is ever dialed.
func malformed(r *rand.Rand, i int) []byte {
	for {
		b := malformedCandidate(r, i)
		if len(b) > 0 && !validConnect(b) {
			return b
		}
	}
}

func malformedCandidate(r *rand.Rand, i int) []byte {
	greet := []byte{5, 1, 0}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	req := func(cmd, atyp byte, addr []byte, port uint16) []byte {
		b := append(append([]byte{}, greet...), 5, cmd, 0, atyp)
		b = append(b, addr...)
		return binary.BigEndian.AppendUint16(b, port)
	}
	switch i % 14 {
	case 0: // random bytes
		return randBytes(1 + r.IntN(64))
	case 1: // another SOCKS version, or none
		v := byte(r.IntN(256))
		if v == 5 {
			v = 4
		}
		return append([]byte{v}, randBytes(r.IntN(16))...)
	case 2: // no methods at all
		return []byte{5, 0}
	case 3: // no acceptable method (no auth is configured)
		return []byte{5, 2, 2, 0x80}
	case 4: // greeting that promises more methods than it sends
		return append([]byte{5, byte(2 + r.IntN(254))}, randBytes(1)...)
	case 5: // good greeting, request with a wrong version
		return append(append([]byte{}, greet...), 4, 1, 0, 1, 127, 0, 0, 1, 0, 80)
	case 6: // unknown command
		return req(byte(4+r.IntN(252)), atypIPv4, []byte{127, 0, 0, 1}, 80)
	case 7: // unknown address type
		atyp := []byte{0, 2, 5, 6, 0xff}[r.IntN(5)]
		return req(1, atyp, randBytes(4), 80)
	case 8: // empty domain name
		return req(1, atypDomain, []byte{0}, 80)
	case 9: // request cut short anywhere
		full := req(1, atypDomain, append([]byte{10}, "example.test"[:10]...), 443)
		return full[:4+r.IntN(len(full)-4)]
	case 10: // port 0
		return req(1, atypIPv4, []byte{127, 0, 0, 1}, 0)
	case 11: // a name with control bytes, spaces or colons
		name := []byte("a\x00b c:d\n")
		return req(1, atypDomain, append([]byte{byte(len(name))}, name...), 80)
	case 12: // a username/password sub-negotiation nobody asked for
		return []byte{5, 1, 2, 1, 1, 'u', 1, 'p'}
	default: // a valid prefix followed by garbage
		return append(append([]byte{}, greet...), randBytes(1+r.IntN(32))...)
	}
}

// validConnect reports whether b holds a no-auth greeting followed by a
// complete CONNECT that a server could dial: an IP, or a non-empty domain
// without a NUL byte (a name with NUL is refused by socks, by mux and by
// Go's resolver alike, so it can never become a DNS query), and a
// non-zero port. Such inputs are never sent.
func validConnect(b []byte) bool {
	if len(b) < 2 || b[0] != 5 || len(b) < 2+int(b[1]) || !bytes.Contains(b[2:2+int(b[1])], []byte{0}) {
		return false
	}
	b = b[2+int(b[1]):]
	if len(b) < 4 || b[0] != 5 || b[1] != 1 {
		return false
	}
	atyp, b := b[3], b[4:]
	var n int
	switch atyp {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	case atypDomain:
		if len(b) < 1 {
			return false
		}
		n, b = int(b[0]), b[1:]
		if n == 0 || len(b) < n || bytes.IndexByte(b[:n], 0) >= 0 {
			return false
		}
	default:
		return false
	}
	return len(b) >= n+2 && binary.BigEndian.Uint16(b[n:]) != 0
}

func TestMalformedGeneratorNeverConnects(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 100000 {
		if b := malformed(r, i); validConnect(b) {
			t.Fatalf("input %d is a valid CONNECT: %x", i, b)
		}
	}
	if !validConnect(connectRequest(nameDest("example.test", 80))) || !validConnect(connectRequest(ipDest("::1", 1))) {
		t.Fatal("validConnect misses valid requests")
	}
}

// TestMalformedSOCKSHandshakes sends 100,000 malformed handshakes (64 at a
// time) to a running client. The client must answer none with success,
// close every one (no hang past the handshake deadline), stay up, keep
// serving real CONNECTs, and come back to its baseline of file
// descriptors and goroutines.
func TestMalformedSOCKSHandshakes(t *testing.T) {
	tg := startTarget(t, echo)
	r := startRig(t, 2, allowLoopback, []string{"--socks-handshake-timeout", "2s"})
	// Warm up, so lazily started goroutines are in the baseline.
	for i := range 3 {
		c := mustConnect(t, r.socks, localDest(tg.Addr()))
		if err := echoRoundTrip(c, uint64(i), 4096); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	base, _ := r.client.waitBaseline(r.client.usage(), 0, 0, 0)
	t.Logf("client before: %v", base)

	n := malformedCount()
	var hung, succeeded, dialErrs, replied atomic.Int64
	start := time.Now()
	limitConcurrency(n, 64, func(i int) {
		rnd := rand.New(rand.NewPCG(uint64(i), 7))
		in := malformed(rnd, i)
		c, err := net.DialTimeout("tcp", r.socks, 5*time.Second)
		if err != nil {
			dialErrs.Add(1)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(in) // may fail if the server already gave up
		c.(*net.TCPConn).CloseWrite()
		resp, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			hung.Add(1)
			return
		}
		if len(resp) > 0 {
			replied.Add(1)
		}
		// A method choice of "no auth" followed by a reply: the reply
		// code must not be success.
		if len(resp) >= 4 && resp[0] == 5 && resp[1] == 0 && resp[2] == 5 && resp[3] == 0 {
			succeeded.Add(1)
			t.Errorf("input %x got a success reply %x", in, resp)
		}
	})
	el := time.Since(start)
	t.Logf("%d malformed handshakes in %v (%.0f/s); %d got bytes back, %d not closed within 10 s, %d dial errors",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), replied.Load(), hung.Load(), dialErrs.Load())
	r.client.requireAlive()
	r.exit.requireAlive()
	if hung.Load() > 0 || dialErrs.Load() > 0 || succeeded.Load() > 0 {
		t.Fatalf("%d hung, %d dial errors, %d success replies", hung.Load(), dialErrs.Load(), succeeded.Load())
	}
	after, ok := r.client.waitBaseline(base, 2, 5, 15*time.Second)
	t.Logf("client after:  %v", after)
	if !ok {
		t.Fatalf("client did not return to baseline: before %v, after %v", base, after)
	}
	c := mustConnect(t, r.socks, localDest(tg.Addr()))
	defer c.Close()
	if err := echoRoundTrip(c, 99, 1<<20); err != nil {
		t.Fatal(err)
	}
}
