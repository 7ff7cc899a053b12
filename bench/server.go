package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/braid-proxy/braid/internal/netlab"
)

// MaxDownload bounds one /bytes request (the server's only allocation is a
// fixed buffer, but a bound keeps a typo from streaming forever).
const MaxDownload = 64 << 30

// ServerConfig configures the sink/source server.
type ServerConfig struct {
	// MPTCP makes the listener accept Multipath TCP (plain TCP still works).
	MPTCP bool
	// Addr is the listen address in the exit namespace; "" means 0.0.0.0:0,
	// reachable at netlab.TargetIP and every link's ExitIP.
	Addr string
}

// Server is the target: an HTTP server in the exit namespace.
//
//	GET  /bytes/{n}?seed=S   n bytes of Payload(S, n)
//	GET  /small/{n}          n bytes (request/response latency probes, keep-alive)
//	POST /sink               reads the body, answers its length and sha256
//
// It records the bytes it sends and receives on timelines.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	port int
	// Sent and Recv count body bytes written and read, from server start.
	Sent, Recv *Timeline

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{}
	once  sync.Once
}

// StartServer starts the server in lab's exit namespace.
func StartServer(ctx context.Context, lab *netlab.Lab, cfg ServerConfig) (*Server, error) {
	lc := &net.ListenConfig{}
	lc.SetMultipathTCP(cfg.MPTCP)
	addr := cfg.Addr
	if addr == "" {
		addr = "0.0.0.0:0"
	}
	ln, err := lab.Listen(ctx, netlab.Exit, lc, "tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: server: %w", err)
	}
	now := time.Now()
	s := &Server{
		ln:    ln,
		port:  ln.Addr().(*net.TCPAddr).Port,
		Sent:  NewTimeline(now),
		Recv:  NewTimeline(now),
		conns: map[net.Conn]struct{}{},
		done:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", s.bytes)
	mux.HandleFunc("GET /small/{n}", s.small)
	mux.HandleFunc("POST /sink", s.sink)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 0, // idle SOCKS tests hold connections open on purpose
		ErrorLog:          nil,
		ConnState:         s.connState,
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Target is the address to ask a proxy for: netlab.TargetIP:Port.
func (s *Server) Target() string {
	return net.JoinHostPort(netlab.TargetIP.String(), strconv.Itoa(s.port))
}

// Conns returns how many connections the server holds.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func parseSize(s string, limit int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("bench: size %q not in 0..%d", s, limit)
	}
	return n, nil
}

func (s *Server) bytes(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.PathValue("n"), MaxDownload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var seed uint64
	if v := r.URL.Query().Get("seed"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			http.Error(w, "bad seed", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	p := NewPayload(seed, n)
	buf := make([]byte, 64<<10)
	for {
		m, _ := p.Read(buf)
		if m == 0 {
			return
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return
		}
		s.Sent.Add(time.Now(), m)
	}
}

func (s *Server) small(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.PathValue("n"), 1<<20)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	b := make([]byte, n)
	fillPayload(b, 0, 0)
	w.Write(b)
	s.Sent.Add(time.Now(), int(n))
}

func (s *Server) sink(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var total int64
	for {
		m, err := r.Body.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			total += int64(m)
			s.Recv.Add(time.Now(), m)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	fmt.Fprintf(w, "%d %s\n", total, hex.EncodeToString(h.Sum(nil)))
}

// Close stops the server, closing every connection, and waits for it.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.srv.Close()
		<-s.done
	})
	return err
}
