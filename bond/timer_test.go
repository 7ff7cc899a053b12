package bond

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func pipePair() (net.Conn, net.Conn) {
	c, e := net.Pipe()
	return &freezeConn{Conn: c, frozen: make(chan struct{})}, &freezeConn{Conn: e, frozen: make(chan struct{})}
}

// freezeConn stops moving bytes either way once frozen, like a path that
// went dark; Close still works.
type freezeConn struct {
	net.Conn
	once   sync.Once
	frozen chan struct{}
}

func (c *freezeConn) freeze() { c.once.Do(func() { close(c.frozen) }) }

func (c *freezeConn) isFrozen() bool {
	select {
	case <-c.frozen:
		return true
	default:
		return false
	}
}

func (c *freezeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.isFrozen() {
		// Swallow what arrives; report nothing until closed.
		for err == nil {
			_, err = c.Conn.Read(b)
		}
		return 0, err
	}
	return n, err
}

func (c *freezeConn) Write(b []byte) (int, error) {
	if c.isFrozen() {
		return 0, c.waitClosed()
	}
	return c.Conn.Write(b)
}

func (c *freezeConn) waitClosed() error {
	// Block like a full socket until the conn is closed.
	var one [1]byte
	c.Conn.SetReadDeadline(time.Time{})
	for {
		if _, err := c.Conn.Read(one[:]); err != nil {
			return err
		}
	}
}

// With every link gone the session waits exactly Grace, then fails with
// ErrNoLinks on both sides.
func TestGraceExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Grace = 10 * time.Second
		p := newPair(t, cfg, pipePair)
		p.client.Stats() // one link
		lost := time.Now()
		for _, l := range p.client.linkList() {
			l.Close()
		}
		<-p.exit.Done()
		<-p.client.Done()
		waited := time.Since(lost)
		if waited < cfg.Grace || waited > cfg.Grace+cfg.tick()*2 {
			t.Fatalf("failed after %v, want %v", waited, cfg.Grace)
		}
		if !errors.Is(p.client.Err(), ErrNoLinks) || !errors.Is(p.exit.Err(), ErrNoLinks) {
			t.Fatalf("errs: client %v exit %v", p.client.Err(), p.exit.Err())
		}
		if _, err := p.client.Write([]byte("x")); !errors.Is(err, ErrNoLinks) {
			t.Fatalf("write after grace: %v", err)
		}
	})
}

// A link that joins within the grace period resumes the stream exactly
// where it stopped, in both directions.
func TestRejoinWithinGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		p := newPair(t, cfg, pipePair)
		first, second := payload(5, 1<<20), payload(6, 1<<20)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(p.exit)
			got <- b
		}()
		if _, err := p.client.Write(first); err != nil {
			t.Fatal(err)
		}
		for _, l := range p.client.linkList() {
			l.Close()
		}
		synctest.Wait()
		time.Sleep(cfg.Grace / 2)
		if p.client.Err() != nil || p.exit.Err() != nil {
			t.Fatalf("session ended inside the grace period: %v / %v", p.client.Err(), p.exit.Err())
		}
		p.join(pipePair, LinkOptions{Name: "back"})
		if _, err := p.client.Write(second); err != nil {
			t.Fatal(err)
		}
		p.client.CloseWrite()
		want := append(append([]byte(nil), first...), second...)
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("got %d bytes, want %d (equal prefix: %v)", len(b), len(want), bytes.HasPrefix(want, b))
		}
	})
}

// A link that hears nothing for LinkTimeout is closed and its Done fires;
// heartbeats keep an idle link alive.
func TestSilentLinkClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		p := newPair(t, cfg, pipePair)
		cl := p.client.linkList()[0]
		// The exit waits longer, so the client's timer is the one that fires.
		p.exit.mu.Lock()
		p.exit.cfg.LinkTimeout *= 3
		p.exit.mu.Unlock()
		// Idle but healthy: heartbeats keep it up well past LinkTimeout.
		time.Sleep(3 * cfg.LinkTimeout)
		if cl.Err() != nil {
			t.Fatalf("idle link died: %v", cl.Err())
		}
		if st := cl.Stats(); st.SRTT <= 0 {
			t.Fatalf("no RTT measured: %+v", st)
		}
		// Freeze the link: nothing moves either way from now on.
		el := p.exit.linkList()[0]
		cl.conn.(*freezeConn).freeze()
		el.conn.(*freezeConn).freeze()
		start := time.Now()
		select {
		case <-cl.Done():
		case <-time.After(2 * cfg.LinkTimeout):
		}
		if !errors.Is(cl.Err(), ErrLinkTimeout) {
			t.Fatalf("link err = %v, want ErrLinkTimeout", cl.Err())
		}
		if d := time.Since(start); d < cfg.LinkTimeout-cfg.HeartbeatInterval || d > cfg.LinkTimeout+cfg.tick()*2 {
			t.Fatalf("closed after %v, want about %v", d, cfg.LinkTimeout)
		}
		<-el.Done() // the exit sees the link closed
	})
}

// linkList returns the session's live links.
func (s *Session) linkList() []*Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Link(nil), s.links...)
}

// A reader that stops reading holds the writer back: the receiver never
// buffers more than RecvWindow and the sender never more than SendBuffer.
func TestSlowReaderBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.SendBuffer = 1 << 20
		cfg.RecvWindow = 2 << 20
		p := newPair(t, cfg, pipePair)
		p.join(pipePair, LinkOptions{Name: "l1"})
		data := payload(21, 8<<20)
		wrote := make(chan int, 1)
		go func() {
			n, _ := p.exit.Write(data)
			wrote <- n
		}()
		synctest.Wait() // the writer is blocked: nothing is reading
		select {
		case n := <-wrote:
			t.Fatalf("Write of %d bytes returned (%d) though nobody reads", len(data), n)
		default:
		}
		p.client.mu.Lock()
		buffered := int(p.client.rcvNext-p.client.rcvRead) + p.client.oooBytes
		p.client.mu.Unlock()
		p.exit.mu.Lock()
		queued := int(p.exit.sndWrite - p.exit.sndUna)
		p.exit.mu.Unlock()
		if buffered > cfg.RecvWindow || buffered < cfg.RecvWindow-cfg.ChunkSize {
			t.Fatalf("receiver buffers %d bytes, window %d", buffered, cfg.RecvWindow)
		}
		if queued > cfg.SendBuffer {
			t.Fatalf("sender queues %d bytes, budget %d", queued, cfg.SendBuffer)
		}
		// Reading drains everything, byte-exact.
		got := make([]byte, len(data))
		if _, err := io.ReadFull(p.client, got); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
		if n := <-wrote; n != len(data) {
			t.Fatalf("wrote %d", n)
		}
	})
}
