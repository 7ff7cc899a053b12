package bond

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/braid-proxy/braid/bond/bondtest"
)

// TestBulkBothWays moves 100 MB each way at once over three unshaped fake
// links and compares hashes.
func TestBulkBothWays(t *testing.T) {
	size := 100 << 20
	if testing.Short() {
		size = 8 << 20
	}
	mk := func() (net.Conn, net.Conn) {
		l := bondtest.Pipe(bondtest.DefaultConfig(), bondtest.DefaultConfig())
		return l.A(), l.B()
	}
	p := newPair(t, DefaultConfig(), mk)
	p.join(mk, LinkOptions{Name: "l1"})
	p.join(mk, LinkOptions{Name: "l2"})
	up, down := payload(11, size), payload(12, size)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if want, got := transfer(t, p.exit, p.client, down); want != got {
			t.Errorf("download: hash mismatch")
		}
	}()
	if want, got := transfer(t, p.client, p.exit, up); want != got {
		t.Errorf("upload: hash mismatch")
	}
	wg.Wait()
}

// TestStallResendsOnOtherLinks: blackholing the link that carries data
// makes the session resend its bytes on the survivor within the stall
// timeout, and the stream completes byte-exact.
func TestStallResendsOnOtherLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		shapes := []shape{{40, 20 * time.Millisecond}, {40, 20 * time.Millisecond}}
		p, links := shapedPair(t, cfg, shapes)
		data := payload(13, 4<<20)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(p.client)
			got <- b
		}()
		go func() {
			p.exit.Write(data)
			p.exit.CloseWrite()
		}()
		time.Sleep(300 * time.Millisecond)
		links[0].Blackhole()
		fault := time.Now()
		b := <-got
		if !bytes.Equal(b, data) {
			t.Fatalf("got %d bytes, want %d", len(b), len(data))
		}
		var stalls, resent int64
		for _, l := range p.exit.Stats().Links {
			stalls += l.Stalls
			resent += l.BytesResent
		}
		if stalls == 0 || resent == 0 {
			t.Fatalf("no stall detected or nothing resent: %+v", p.exit.Stats())
		}
		// At 40 Mbit/s the rest of 4 MiB takes well under 1 s once resent;
		// a stall detector that waited for LinkTimeout would take 5 s.
		if d := time.Since(fault); d > 2*time.Second {
			t.Fatalf("transfer finished %v after the blackhole", d)
		}
	})
}

// TestBackupLinkIdleUntilNeeded: a backup link carries nothing while the
// primary is healthy, and takes over when it dies.
func TestBackupLinkIdleUntilNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func() (net.Conn, net.Conn) {
			l := bondtest.Pipe(shape{20, 10 * time.Millisecond}.linkConfig(), shape{20, 10 * time.Millisecond}.linkConfig())
			return l.A(), l.B()
		}
		p := newPair(t, DefaultConfig(), mk)
		_, backup := p.join(mk, LinkOptions{Name: "backup", Backup: true})
		data := payload(14, 1<<20)
		if _, err := p.exit.Write(data); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data))
		if _, err := io.ReadFull(p.client, buf); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("first part: %v", err)
		}
		if n := backup.Stats().BytesSent; n != 0 {
			t.Fatalf("backup carried %d bytes while the primary was up", n)
		}
		for _, l := range p.exit.linkList() {
			if l != backup {
				l.Close()
			}
		}
		if _, err := p.exit.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p.client, buf); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("second part: %v", err)
		}
		if backup.Stats().BytesSent == 0 {
			t.Fatal("backup carried nothing after the primary died")
		}
	})
}

// TestRandomFaults: for many seeds, a random sequence of link kills,
// blackholes, blocks and joins during a two-way transfer yields exactly
// the bytes sent. BOND_FAULT_SEEDS=N runs more seeds.
func TestRandomFaults(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 6
	}
	if v, err := strconv.Atoi(os.Getenv("BOND_FAULT_SEEDS")); err == nil {
		seeds = v
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomFaults(t, uint64(seed)) })
		})
	}
}

func randomFaults(t *testing.T, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 77))
	cfg := DefaultConfig()
	cfg.Grace = 10 * time.Second
	randomShape := func() shape {
		return shape{float64(2 + rnd.IntN(30)), time.Duration(2+rnd.IntN(100)) * time.Millisecond}
	}
	var mu sync.Mutex
	var links []*bondtest.Link
	mk := func() (net.Conn, net.Conn) {
		s := randomShape()
		l := bondtest.Pipe(s.linkConfig(), s.linkConfig())
		mu.Lock()
		links = append(links, l)
		mu.Unlock()
		return l.A(), l.B()
	}
	p := newPair(t, cfg, mk)
	for range rnd.IntN(3) {
		p.join(mk, LinkOptions{})
	}
	up, down := payload(seed, 1<<20+rnd.IntN(2<<20)), payload(seed+1000, 1<<20+rnd.IntN(2<<20))
	upGot, downGot := make(chan [32]byte, 1), make(chan [32]byte, 1)
	hashAll := func(r io.Reader, out chan<- [32]byte) {
		h := sha256.New()
		io.Copy(h, r)
		out <- [32]byte(h.Sum(nil))
	}
	go hashAll(p.exit, upGot)
	go hashAll(p.client, downGot)
	go func() { p.client.Write(up); p.client.CloseWrite() }()
	go func() { p.exit.Write(down); p.exit.CloseWrite() }()

	// Faults while the transfer runs: each step waits a random time,
	// then hurts a random link or adds one. Outages stay inside Grace.
	var log []string
	finished := make(chan struct{})
	var upOK, downOK bool
	go func() {
		upOK = <-upGot == sha256.Sum256(up)
		downOK = <-downGot == sha256.Sum256(down)
		close(finished)
	}()
	defer func() {
		select {
		case <-finished:
			if !upOK || !downOK {
				t.Errorf("seed %d: hash mismatch (upload ok %v, download ok %v); faults: %v", seed, upOK, downOK, log)
			}
		default:
		}
	}()
	begin := time.Now()
	defer func() { t.Logf("finished after %v of fake time; faults: %v", time.Since(begin), log) }()
	for step := 0; ; step++ {
		select {
		case <-finished:
			return
		case <-time.After(time.Duration(20+rnd.IntN(300)) * time.Millisecond):
		}
		if step > 40 {
			// Enough damage: make sure a healthy link exists and finish.
			p.join(mk, LinkOptions{})
			select {
			case <-finished:
				return
			case <-time.After(cfg.Grace):
				t.Fatalf("seed %d: transfer did not finish; faults: %v", seed, log)
			}
		}
		mu.Lock()
		victim := links[rnd.IntN(len(links))]
		mu.Unlock()
		switch op := rnd.IntN(10); {
		case op < 3:
			victim.Close()
			log = append(log, "close")
		case op < 5:
			victim.Blackhole()
			log = append(log, "blackhole")
		case op < 7:
			victim.Block()
			d := time.Duration(rnd.IntN(1500)) * time.Millisecond
			time.AfterFunc(d, victim.Unblock)
			log = append(log, "block "+d.String())
		default:
			p.join(mk, LinkOptions{})
			log = append(log, "join")
		}
		if p.client.Err() != nil || p.exit.Err() != nil {
			t.Fatalf("seed %d: session failed: %v / %v; faults: %v", seed, p.client.Err(), p.exit.Err(), log)
		}
	}
}
