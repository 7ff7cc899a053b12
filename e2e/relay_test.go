//go:build linux

package e2e

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// relay is a TCP relay on 127.0.0.1 between a client's link and the exit.
// cut closes every connection through it (both sides), which the client
// sees as a dead link and redials; with record set it keeps each
// connection's client→exit bytes, to replay them.
type relay struct {
	ln       net.Listener
	upstream string
	record   bool
	accepted atomic.Int64

	mu       sync.Mutex
	closed   bool // guarded by mu; no pair is added after close
	pairs    map[*relayPair]struct{}
	captures []*bytes.Buffer // guarded by mu; one per connection when record
	wg       sync.WaitGroup
}

type relayPair struct {
	down, up net.Conn
	once     sync.Once
}

func (p *relayPair) close() {
	p.once.Do(func() {
		p.down.Close()
		p.up.Close()
	})
}

func startRelay(t testing.TB, upstream string, record bool) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, upstream: upstream, record: record, pairs: map[*relayPair]struct{}{}}
	r.wg.Add(1)
	go r.acceptLoop()
	t.Cleanup(r.close)
	return r
}

func (r *relay) Addr() string { return r.ln.Addr().String() }

func (r *relay) acceptLoop() {
	defer r.wg.Done()
	for {
		down, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		up, err := net.Dial("tcp", r.upstream)
		if err != nil {
			down.Close()
			continue
		}
		p := &relayPair{down: down, up: up}
		var capture *bytes.Buffer
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			p.close()
			return
		}
		r.pairs[p] = struct{}{}
		if r.record {
			capture = new(bytes.Buffer)
			r.captures = append(r.captures, capture)
		}
		r.mu.Unlock()
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			var dst io.Writer = up
			if capture != nil {
				dst = io.MultiWriter(up, &lockedWriter{mu: &r.mu, w: capture})
			}
			io.Copy(dst, down)
			p.close()
			r.mu.Lock()
			delete(r.pairs, p)
			r.mu.Unlock()
		}()
		go func() {
			defer r.wg.Done()
			io.Copy(down, up)
			p.close()
		}()
	}
}

// lockedWriter appends to w under mu, so captures can be read while the
// relay runs.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// cut closes every connection through the relay now and returns how many.
func (r *relay) cut() int {
	r.mu.Lock()
	ps := make([]*relayPair, 0, len(r.pairs))
	for p := range r.pairs {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	return len(ps)
}

// capture returns a copy of the client→exit bytes of connection i.
func (r *relay) capture(i int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.captures) {
		return nil
	}
	return bytes.Clone(r.captures[i].Bytes())
}

func (r *relay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.ln.Close()
	r.cut()
	r.wg.Wait()
}
