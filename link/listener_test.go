package link

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func newTestListener(t *testing.T, cfg Config) *Listener {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, srv)
	t.Cleanup(func() { l.Close() })
	return l
}

// echoAccepted accepts from l until it is closed and echoes each conn.
func echoAccepted(t *testing.T, l *Listener) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
}

// roundTrip authenticates to addr, sends payload, half-closes and checks
// the echo by hash.
func roundTrip(addr string, cfg Config, payload []byte) error {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c, err := Client(context.Background(), raw, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(safety))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if want := sha256.Sum256(payload); string(h.Sum(nil)) != string(want[:]) {
		return errors.New("echo corrupted")
	}
	return nil
}

// TestListenerServesWhileStalled: 200 peers that send one byte and stall
// occupy handshake slots, and good clients still get through at once.
func TestListenerServesWhileStalled(t *testing.T) {
	secret := newSecret(t)
	cfg := testConfig(secret)
	cfg.HandshakeTimeout = time.Minute // the stalled ones stay until Close
	l := newTestListener(t, cfg)
	echoAccepted(t, l)
	addr := l.Addr().String()

	const stalled = 200
	var stalls []net.Conn
	for range stalled {
		c := dial(t, addr)
		if _, err := c.Write([]byte{22}); err != nil {
			t.Fatal(err)
		}
		stalls = append(stalls, c)
	}

	payload := make([]byte, 64<<10)
	rand.Read(payload)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- roundTrip(addr, testConfig(secret), payload)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("good client: %v", err)
		}
	}
	// The kernel hands out connections in order, so every stalled one
	// was accepted before the good ones, and they are all still pending.
	st := l.Stats()
	if st.Pending < stalled || st.Authenticated != 4 || st.Accepted != stalled+4 {
		t.Fatalf("stats %+v", st)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range stalls {
		if n := drainRaw(t, c); n != 0 {
			t.Fatalf("stalled peer got %d bytes", n)
		}
	}
	st = l.Stats()
	if st.Pending != 0 || st.Authenticated != 4 {
		t.Fatalf("after Close: %+v", st)
	}
	if _, err := l.Accept(); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestListenerBoundsPending: with MaxPending 1 a stalled peer holds the
// only slot, so a good client is not even accepted until it goes.
func TestListenerBoundsPending(t *testing.T) {
	secret := newSecret(t)
	cfg := testConfig(secret)
	cfg.MaxPending = 1
	cfg.HandshakeTimeout = time.Minute
	l := newTestListener(t, cfg)
	echoAccepted(t, l)
	addr := l.Addr().String()

	stall := dial(t, addr)
	stall.Write([]byte{22})

	// The client's own deadline ends its wait: the exit never answers
	// while the slot is taken.
	short := testConfig(secret)
	short.HandshakeTimeout = 300 * time.Millisecond
	if err := roundTrip(addr, short, []byte("x")); !errors.Is(err, ErrHandshake) || !isTimeout(err) {
		t.Fatalf("client while the slot is taken: %v, want a handshake timeout", err)
	}
	if st := l.Stats(); st.Accepted != 1 {
		t.Fatalf("accepted %d with MaxPending 1", st.Accepted)
	}

	stall.Close() // frees the slot
	if err := roundTrip(addr, testConfig(secret), []byte("hello")); err != nil {
		t.Fatalf("client after the slot freed: %v", err)
	}
	st := l.Stats()
	if st.Authenticated != 1 || st.FailedTLS != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestListenerCountsFailures(t *testing.T) {
	secret := newSecret(t)
	cfg := testConfig(secret)
	// Short for the stalled peer, long enough for the good handshakes
	// under -race on a busy machine.
	cfg.HandshakeTimeout = 1500 * time.Millisecond
	l := newTestListener(t, cfg)
	echoAccepted(t, l)
	addr := l.Addr().String()

	// Wrong secret, stalled, garbage: each closed, none reaches Accept.
	if err := roundTrip(addr, testConfig(newSecret(t)), []byte("x")); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong secret: %v", err)
	}
	stall := dial(t, addr)
	stall.Write([]byte{22})
	if n := drainRaw(t, stall); n != 0 {
		t.Fatalf("stalled got %d bytes", n)
	}
	junk := dial(t, addr)
	junk.Write([]byte("SSH-2.0-probe\r\n"))
	junk.(*net.TCPConn).CloseWrite()
	if n := drainRaw(t, junk); n != 0 {
		t.Fatalf("junk got %d bytes", n)
	}
	if err := roundTrip(addr, testConfig(secret), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	// A failure's counter is bumped just after its conn is closed;
	// Close waits for every handshake goroutine, so read stats after it.
	l.Close()
	st := l.Stats()
	want := Stats{Accepted: 4, Authenticated: 1, FailedAuth: 1, TimedOut: 1, FailedTLS: 1}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

// failingListener fails Accept with a permanent error.
type failingListener struct {
	net.Listener
	err error
}

func (f failingListener) Accept() (net.Conn, error) { return nil, f.err }

func TestListenerInnerFailure(t *testing.T) {
	srv, err := NewServer(testConfig(newSecret(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	l := NewListener(failingListener{ln, boom}, srv)
	if _, err := l.Accept(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the inner error", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
