package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// relayChunk is the read size of the relay; the delay line holds chunks of
// at most this many bytes.
const relayChunk = 16 * 1024

// relay is a TCP relay in the exit namespace that adds a link's DelayMs to
// each direction with toxiproxy's latency toxic. toxiproxy's own Proxy
// listens and dials from goroutines we cannot pin to a namespace, so the
// relay uses toxiproxy's toxic pipeline (stub, chunk channels, latency
// toxic) with its own accept loop and namespace-aware dialing.
type relay struct {
	link     *Link
	ln       net.Listener
	addr     netip.AddrPort
	upstream string
	depth    int // delay-line capacity in chunks

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

func startRelay(ctx context.Context, k *Link, port int) (*relay, error) {
	l := k.lab
	ln, err := l.Listen(ctx, Exit, nil, "tcp4", netip.AddrPortFrom(k.ExitIP, 0).String())
	if err != nil {
		return nil, fmt.Errorf("netlab: relay for link %d: %w", k.Index, err)
	}
	addr, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("netlab: relay address: %w", err)
	}
	// Hold two bandwidth-delay products, so the delay line never limits
	// throughput but does not bloat far beyond what the link could carry.
	depth := 1024
	if k.Spec.RateMbit > 0 {
		bdp := k.Spec.RateMbit * 1e6 / 8 * float64(k.Spec.DelayMs) / 1000
		depth = min(1024, int(2*bdp/relayChunk)+4)
	}
	r := &relay{
		link:     k,
		ln:       ln,
		addr:     addr,
		upstream: netip.AddrPortFrom(k.ExitIP, uint16(port)).String(),
		depth:    depth,
		conns:    map[net.Conn]struct{}{},
	}
	r.wg.Add(1)
	go r.accept()
	l.log.Info("netlab: delay relay", "link", k.Index, "listen", addr, "upstream", r.upstream, "delay_ms", k.Spec.DelayMs)
	return r, nil
}

func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *relay) serve(down net.Conn) {
	defer r.wg.Done()
	if !r.track(down) {
		down.Close()
		return
	}
	defer r.untrack(down)
	up, err := r.link.lab.DialContext(context.Background(), Exit, nil, "tcp4", r.upstream)
	if err != nil {
		down.Close()
		return
	}
	if !r.track(up) {
		up.Close()
		down.Close()
		return
	}
	defer r.untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(down, up) }()
	go func() { defer wg.Done(); r.pipe(up, down) }()
	wg.Wait()
	up.Close()
	down.Close()
}

// pipe copies src to dst through a latency toxic. EOF is passed on as a
// half-close; any other error aborts both sides.
func (r *relay) pipe(src, dst net.Conn) {
	in := make(chan *stream.StreamChunk, r.depth)
	out := make(chan *stream.StreamChunk)
	stub := toxics.NewToxicStub(in, out)
	toxic := &toxics.LatencyToxic{Latency: int64(r.link.Spec.DelayMs)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		toxic.Pipe(stub)
	}()
	var readErr error
	go func() {
		w := stream.NewChanWriter(in)
		buf := make([]byte, relayChunk)
		_, readErr = io.CopyBuffer(w, src, buf)
		w.Close()
	}()
	_, werr := io.Copy(dst, stream.NewChanReader(out))
	if werr != nil {
		src.Close()
		dst.Close()
	}
	// Drain so the toxic and reader always finish, even after a write error.
	for range out {
	}
	<-done
	if readErr != nil && !errors.Is(readErr, io.EOF) {
		dst.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *relay) Close() error {
	var err error
	r.once.Do(func() {
		err = r.ln.Close()
		r.mu.Lock()
		r.closed = true
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}
