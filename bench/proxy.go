package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/braid-proxy/braid/internal/netlab"
	socks5 "github.com/things-go/go-socks5"
)

// ErrNoBraid means the braid binary was not found.
var ErrNoBraid = errors.New("bench: braid binary not found (build it with `go build -o bin/braid ./cmd/braid` or set BRAID_BIN)")

// Proxy is a SOCKS5 server reachable from the lab's client namespace:
// braid, or the in-process reference used to test the harness.
type Proxy interface {
	// Name labels the proxy in tables and plots.
	Name() string
	// SOCKSAddr is host:port of the SOCKS5 listener in the client namespace.
	SOCKSAddr() string
	// Procs are the proxy's processes (client first), for CPU and memory
	// figures; nil for an in-process proxy.
	Procs() []*netlab.Proc
	// Close stops the proxy and waits for it.
	Close() error
}

// ProxyStarter starts a proxy in lab bonding the given links (indexes),
// ready to carry traffic to srv when it returns.
type ProxyStarter func(ctx context.Context, lab *netlab.Lab, srv *Server, links []int) (Proxy, error)

// BraidBinary returns the braid binary: $BRAID_BIN, else <module>/bin/braid.
func BraidBinary() (string, error) {
	if p := os.Getenv("BRAID_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: BRAID_BIN: %w", ErrNoBraid, err)
		}
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", ErrNoBraid
	}
	p := filepath.Join(filepath.Dir(file), "..", "bin", "braid")
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		return "", ErrNoBraid
	}
	return filepath.Clean(p), nil
}

// BraidOptions configure StartBraid.
type BraidOptions struct {
	// Bin is the braid binary.
	Bin string
	// Links are the lab links to bond; nil means all.
	Links []int
	// ConnsPerLink is conns= of each --link; 0 means 1.
	ConnsPerLink int
	// ExitPort is the exit's listen port; 0 means 7000.
	ExitPort int
	// SOCKS is the client's SOCKS listen address; "" means 127.0.0.1:1080.
	SOCKS string
	// ExitArgs and ClientArgs are appended to each command line.
	ExitArgs, ClientArgs []string
	// Ready bounds the wait for a first successful request; 0 means 20 s.
	Ready time.Duration
}

// Braid is a running braid exit + client pair.
type Braid struct {
	// Exit runs in the exit namespace, Client in the client namespace.
	Exit, Client *netlab.Proc
	socks        string
	dir          string
	once         sync.Once
}

// Name implements Proxy.
func (b *Braid) Name() string { return "braid" }

// SOCKSAddr implements Proxy.
func (b *Braid) SOCKSAddr() string { return b.socks }

// Procs implements Proxy.
func (b *Braid) Procs() []*netlab.Proc { return []*netlab.Proc{b.Client, b.Exit} }

// Close stops both processes (SIGTERM, then SIGKILL after 5 s).
func (b *Braid) Close() error {
	b.once.Do(func() {
		if b.Client != nil {
			b.Client.Stop(5 * time.Second)
		}
		if b.Exit != nil {
			b.Exit.Stop(5 * time.Second)
		}
		os.RemoveAll(b.dir)
	})
	return nil
}

// BraidArgs returns the exit and client command lines StartBraid runs
// (after the binary), given the secret file and each link's endpoint.
func BraidArgs(lab *netlab.Lab, opt BraidOptions, secret string, eps map[int]netip.AddrPort) (exit, client []string) {
	exit = []string{"exit", "--listen", "0.0.0.0:" + strconv.Itoa(opt.ExitPort),
		"--secret-file", secret, "--allow", netlab.TargetNet.String()}
	exit = append(exit, opt.ExitArgs...)
	client = []string{"client", "--socks", opt.SOCKS, "--secret-file", secret,
		"--exit", eps[opt.Links[0]].String()}
	for _, i := range opt.Links {
		k := lab.Link(i)
		client = append(client, "--link", fmt.Sprintf("to=%s,dev=%s,src=%s,conns=%d,name=l%d",
			eps[i], k.ClientDev, k.ClientIP, opt.ConnsPerLink, i))
	}
	client = append(client, opt.ClientArgs...)
	return exit, client
}

// StartBraid is the seam where braid plugs into the harness: it writes a
// secret with `braid keygen`, starts `braid exit` in the exit namespace and
// `braid client` in the client namespace with one --link per lab link, and
// returns once a request through the SOCKS port reaches srv.
func StartBraid(ctx context.Context, lab *netlab.Lab, srv *Server, opt BraidOptions) (*Braid, error) {
	if opt.Bin == "" {
		bin, err := BraidBinary()
		if err != nil {
			return nil, err
		}
		opt.Bin = bin
	}
	if opt.Links == nil {
		for i := range lab.Links() {
			opt.Links = append(opt.Links, i)
		}
	}
	if len(opt.Links) == 0 {
		return nil, errors.New("bench: braid: no links")
	}
	opt.ConnsPerLink = max(opt.ConnsPerLink, 1)
	if opt.ExitPort == 0 {
		opt.ExitPort = 7000
	}
	if opt.SOCKS == "" {
		opt.SOCKS = "127.0.0.1:1080"
	}
	if opt.Ready == 0 {
		opt.Ready = 20 * time.Second
	}
	dir, err := os.MkdirTemp("", "braid-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: braid: %w", err)
	}
	b := &Braid{socks: opt.SOCKS, dir: dir}
	fail := func(err error) (*Braid, error) {
		b.Close()
		return nil, err
	}
	key, err := exec.CommandContext(ctx, opt.Bin, "keygen").Output()
	if err != nil {
		return fail(fmt.Errorf("bench: braid keygen: %w", err))
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, key, 0o600); err != nil {
		return fail(fmt.Errorf("bench: braid: %w", err))
	}
	eps := map[int]netip.AddrPort{}
	for _, i := range opt.Links {
		if eps[i], err = lab.Link(i).Endpoint(ctx, opt.ExitPort); err != nil {
			return fail(err)
		}
	}
	exitArgs, clientArgs := BraidArgs(lab, opt, secret, eps)
	if b.Exit, err = lab.Run(netlab.Exit, append([]string{opt.Bin}, exitArgs...)...); err != nil {
		return fail(err)
	}
	if b.Client, err = lab.Run(netlab.Client, append([]string{opt.Bin}, clientArgs...)...); err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, lab, b, srv, opt.Ready); err != nil {
		return fail(err)
	}
	return b, nil
}

// waitReady polls a small request through the proxy until it succeeds, a
// process dies or the deadline passes. Polling is the only readiness signal
// an external process offers here.
func waitReady(ctx context.Context, lab *netlab.Lab, p Proxy, srv *Server, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	dial := SOCKSDial(lab, p.SOCKSAddr(), srv)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		for _, pr := range p.Procs() {
			select {
			case <-pr.Done():
				return fmt.Errorf("bench: %s exited during start: %w\nstderr: %s", p.Name(), pr.Wait(), pr.Stderr())
			default:
			}
		}
		c, err := dial(ctx)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = Small(c, bufio.NewReader(c), 1)
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			var stderr []string
			for _, pr := range p.Procs() {
				stderr = append(stderr, string(pr.Stderr()))
			}
			return fmt.Errorf("bench: %s not ready after %v: %w\nstderr: %s", p.Name(), limit, last, strings.Join(stderr, "\n---\n"))
		case <-tick.C:
		}
	}
}

// BraidStarter returns a ProxyStarter for braid with opt as the base.
func BraidStarter(opt BraidOptions) ProxyStarter {
	return func(ctx context.Context, lab *netlab.Lab, srv *Server, links []int) (Proxy, error) {
		o := opt
		o.Links = links
		return StartBraid(ctx, lab, srv, o)
	}
}

// RefSOCKS is an in-process SOCKS5 server (go-socks5) in the client
// namespace that dials the target over a single link. It is the stand-in
// that lets the harness, the SOCKS client paths and real SOCKS clients
// (curl, proxychains4) be tested without braid; it does not bond.
type RefSOCKS struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	once   sync.Once
}

// StartRefSOCKS listens on 127.0.0.1:0 in the client namespace and dials
// targets from link's client address.
func StartRefSOCKS(ctx context.Context, lab *netlab.Lab, link int) (*RefSOCKS, error) {
	ln, err := lab.Listen(ctx, netlab.Client, nil, "tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: ref socks: %w", err)
	}
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(lab.Link(link).ClientIP, 0)),
	}
	srv := socks5.NewServer(
		socks5.WithDial(lab.Dialer(netlab.Client, d)),
		socks5.WithLogger(socks5.NewLogger(log.New(io.Discard, "", 0))),
	)
	r := &RefSOCKS{ln: ln, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				c.Close()
				continue
			}
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				srv.ServeConn(c)
				r.mu.Lock()
				delete(r.conns, c)
				r.mu.Unlock()
			}()
		}
	}()
	return r, nil
}

// RefStarter is a ProxyStarter for RefSOCKS over the first of links.
func RefStarter(ctx context.Context, lab *netlab.Lab, srv *Server, links []int) (Proxy, error) {
	if len(links) == 0 {
		return nil, errors.New("bench: ref socks: no links")
	}
	return StartRefSOCKS(ctx, lab, links[0])
}

// Name implements Proxy.
func (r *RefSOCKS) Name() string { return "ref-socks (single link)" }

// SOCKSAddr implements Proxy.
func (r *RefSOCKS) SOCKSAddr() string { return r.ln.Addr().String() }

// Procs implements Proxy.
func (r *RefSOCKS) Procs() []*netlab.Proc { return nil }

// Close closes the listener and every connection and waits for them.
func (r *RefSOCKS) Close() error {
	r.once.Do(func() {
		r.ln.Close()
		r.mu.Lock()
		r.closed = true
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return nil
}
