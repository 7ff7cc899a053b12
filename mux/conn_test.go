package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/yamux"
)

func newRawClient(conn net.Conn) (*yamux.Session, error) {
	return yamux.Client(conn, testConfig().yamuxConfig(discardLogger))
}

// yamuxPair returns a stream opened by a client session and the same
// stream accepted by a server session, both configured by cfg.
func yamuxPair(t *testing.T, cfg Config) (cs, ss *yamux.Session, c, s *yamux.Stream) {
	t.Helper()
	a, b := tcpPair(t)
	var err error
	if cs, err = yamux.Client(a, cfg.yamuxConfig(discardLogger)); err != nil {
		t.Fatal(err)
	}
	if ss, err = yamux.Server(b, cfg.yamuxConfig(discardLogger)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Close()
	})
	if c, err = cs.OpenStream(); err != nil {
		t.Fatal(err)
	}
	if s, err = ss.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	return cs, ss, c, s
}

// Unread data is bounded by StreamWindow: the writer stalls after exactly
// one window, and the bytes then all arrive intact.
func TestStreamWindowBoundsBuffer(t *testing.T) {
	cfg := testConfig()
	cfg.StreamWindow = 512 << 10
	_, _, c, s := yamuxPair(t, cfg)
	chunk := make([]byte, 64<<10)
	var written int
	for {
		_ = s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := s.Write(chunk)
		written += n
		if errors.Is(err, yamux.ErrTimeout) {
			break // yamux only times out with the send window at zero
		}
		if err != nil {
			t.Fatal(err)
		}
		if written > 4*int(cfg.StreamWindow) {
			t.Fatalf("wrote %d bytes to a stream nobody reads", written)
		}
	}
	if written != int(cfg.StreamWindow) {
		t.Fatalf("writer stalled after %d bytes, want exactly the window %d", written, cfg.StreamWindow)
	}
	got, err := io.ReadFull(c, make([]byte, written))
	if err != nil || got != written {
		t.Fatalf("read back %d, %v", got, err)
	}
}

func TestStreamConnSemantics(t *testing.T) {
	cs, _, c, s := yamuxPair(t, testConfig())
	released := 0
	cc := newStreamConn(c, cs.LocalAddr(), cs.RemoteAddr(), func() { released++ })
	sc := newStreamConn(s, nil, nil, nil)

	// A read deadline is a net timeout wrapping os.ErrDeadlineExceeded.
	_ = cc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := cc.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline read: %v", err)
	}
	_ = cc.SetReadDeadline(time.Time{})

	// Close wakes a blocked Read with net.ErrClosed.
	readErr := make(chan error, 1)
	go func() {
		_, err := cc.Read(make([]byte, 1))
		readErr <- err
	}()
	// Make sure the reader is blocked inside yamux: it cannot return
	// before the peer writes or the conn closes, so just close.
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read woken by Close: %v", err)
	}
	if err := cc.Close(); err != nil || released != 1 {
		t.Fatalf("second Close: %v, released %d times", err, released)
	}
	if _, err := cc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := cc.CloseWrite(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("CloseWrite after Close: %v", err)
	}
	// The peer sees a clean EOF (FIN), not an error.
	if _, err := sc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after Close: %v, want EOF", err)
	}
}

// idleWatch fires once no touch happened for d, and not before.
func TestIdleWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fired := make(chan time.Time, 1)
		start := time.Now()
		w := startIdleWatch(10*time.Second, func() { fired <- time.Now() })
		for range 5 { // activity every 6 s keeps it alive for 30 s
			time.Sleep(6 * time.Second)
			w.touch()
		}
		synctest.Wait()
		select {
		case <-fired:
			t.Fatal("fired while active")
		default:
		}
		at := <-fired
		if got := at.Sub(start); got != 40*time.Second {
			t.Fatalf("fired after %v, want 40s (10s after the last touch)", got)
		}
	})
}

func TestIdleWatchStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startIdleWatch(time.Second, func() { t.Error("fired after stop") })
		w.stop()
		time.Sleep(5 * time.Second)
		synctest.Wait()
	})
}
