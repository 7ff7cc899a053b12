package bond

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair is a client session and its exit session, joined by links made by
// a dial function.
type pair struct {
	t      testing.TB
	srv    *Server
	client *Session
	exit   *Session
}

// newPair builds a client and exit session with the first link from mk.
func newPair(t testing.TB, cfg Config, mk func() (c, e net.Conn)) *pair {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{t: t, srv: srv, client: client}
	p.join(mk, LinkOptions{Name: "l0"})
	p.exit, err = srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.client.Close()
		p.srv.Close()
	})
	return p
}

// join adds one link, running both handshakes.
func (p *pair) join(mk func() (c, e net.Conn), opts LinkOptions) (*Link, *Link) {
	p.t.Helper()
	c, e := mk()
	type res struct {
		l   *Link
		err error
	}
	ch := make(chan res, 1)
	go func() {
		l, err := p.srv.AddLink(context.Background(), e, opts)
		ch <- res{l, err}
	}()
	cl, err := p.client.AddLink(context.Background(), c, opts)
	r := <-ch
	if err != nil || r.err != nil {
		p.t.Fatalf("join: client %v, exit %v", err, r.err)
	}
	return cl, r.l
}

// tcpPair returns a connected loopback TCP pair.
func tcpPair(t testing.TB) func() (net.Conn, net.Conn) {
	return func() (net.Conn, net.Conn) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ch := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			ch <- c
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		e := <-ch
		if e == nil {
			t.Fatal("accept failed")
		}
		return c, e
	}
}

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sendRecv writes data on w in pieces of random size, then CloseWrite, and
// returns the sha256 of everything r read until EOF.
func transfer(t testing.TB, w, r *Session, data []byte) (sent, got [32]byte) {
	t.Helper()
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(1, 2))
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rnd.IntN(100<<10))
			if _, err := w.Write(rest[:n]); err != nil {
				werr = err
				return
			}
			rest = rest[n:]
		}
		werr = w.CloseWrite()
	}()
	h := sha256.New()
	_, rerr := io.Copy(h, r)
	wg.Wait()
	if werr != nil || rerr != nil {
		t.Fatalf("transfer: write %v, read %v", werr, rerr)
	}
	copy(got[:], h.Sum(nil))
	return sha256.Sum256(data), got
}

func TestTransferBothWaysTCP(t *testing.T) {
	p := newPair(t, DefaultConfig(), tcpPair(t))
	p.join(tcpPair(t), LinkOptions{Name: "l1"})
	p.join(tcpPair(t), LinkOptions{Name: "l2"})
	up, down := payload(1, 20<<20), payload(2, 20<<20)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		want, got := transfer(t, p.exit, p.client, down)
		if want != got {
			t.Errorf("download hash mismatch")
		}
	}()
	want, got := transfer(t, p.client, p.exit, up)
	if want != got {
		t.Errorf("upload hash mismatch")
	}
	wg.Wait()
	st := p.client.Stats()
	if len(st.Links) != 3 {
		t.Fatalf("links = %d, want 3", len(st.Links))
	}
	for _, l := range st.Links {
		if l.BytesSent == 0 {
			t.Errorf("link %s carried nothing: %+v", l.Name, l)
		}
	}
}

func TestCloseDeliversEverything(t *testing.T) {
	p := newPair(t, DefaultConfig(), tcpPair(t))
	data := payload(3, 3<<20)
	go func() {
		p.client.Write(data)
		p.client.Close()
	}()
	got, err := io.ReadAll(p.exit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
	// The exit sees the GOAWAY and ends too.
	<-p.exit.Done()
	if _, err := p.exit.Write([]byte("x")); err == nil {
		t.Fatal("write after peer GOAWAY succeeded")
	}
}

func TestDeadlines(t *testing.T) {
	p := newPair(t, DefaultConfig(), tcpPair(t))
	p.client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := p.client.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read err = %v, want deadline", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read err %v is not a net.Error timeout", err)
	}
	// A deadline in the past wakes a blocked Read at once.
	done := make(chan error, 1)
	p.client.SetReadDeadline(time.Time{})
	go func() {
		_, err := p.client.Read(make([]byte, 1))
		done <- err
	}()
	p.client.SetReadDeadline(time.Unix(1, 0))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read err = %v", err)
	}
}
