package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/braid-proxy/braid/admin"
	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/link"
	"github.com/braid-proxy/braid/mux"
	"github.com/braid-proxy/braid/socks"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

func clientCommand() *cli.Command {
	return withConfig(&cli.Command{
		Name:      "client",
		Usage:     "run the SOCKS5 front end and bond its connections over your links to the exit",
		UsageText: "braid client --socks 127.0.0.1:1080 --secret-file FILE --exit HOST:PORT [--link SPEC]...",
		Description: "SPEC is comma-separated key=value: to=HOST:PORT (this link's exit address;\n" +
			"default --exit), dev=IFACE (bind to an interface), src=IP (source address),\n" +
			"conns=N (parallel TCP connections on this path), name=NAME, backup (use only\n" +
			"when the others are down). Without --link, --links N plain links use the\n" +
			"default route.",
		Flags: append([]cli.Flag{
			altsrc.NewStringFlag(&cli.StringFlag{Name: "socks", Value: "127.0.0.1:1080", Usage: "SOCKS5 listen address", EnvVars: []string{"BRAID_SOCKS"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "secret-file", Usage: "file with the shared secret (braid keygen)", EnvVars: []string{"BRAID_SECRET_FILE"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "exit", Usage: "the exit's HOST:PORT", EnvVars: []string{"BRAID_EXIT"}}),
			altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "link", Usage: "a link to the exit (repeat): to=,dev=,src=,conns=,name=,backup", EnvVars: []string{"BRAID_LINK"}}),
			altsrc.NewIntFlag(&cli.IntFlag{Name: "links", Value: 2, Usage: "without --link: this many plain links over the default route", EnvVars: []string{"BRAID_LINKS"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "socks-auth-file", Usage: "require SOCKS5 username/password from this file (user:password lines)", EnvVars: []string{"BRAID_SOCKS_AUTH_FILE"}}),
			altsrc.NewBoolFlag(&cli.BoolFlag{Name: "allow-public", Usage: "allow a non-loopback --socks address without --socks-auth-file", EnvVars: []string{"BRAID_ALLOW_PUBLIC"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "server-name", Usage: "verify the exit's certificate for this name (with a real --cert on the exit)", EnvVars: []string{"BRAID_SERVER_NAME"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "grace", Value: bond.DefaultConfig().Grace, Usage: "how long the session survives with every link down", EnvVars: []string{"BRAID_GRACE"}}),
			altsrc.NewIntFlag(&cli.IntFlag{Name: "max-conns", Value: socks.DefaultConfig().MaxConns, Usage: "concurrent SOCKS connections; more are closed at once", EnvVars: []string{"BRAID_MAX_CONNS"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "socks-handshake-timeout", Value: socks.DefaultConfig().HandshakeTimeout, Usage: "a SOCKS client must finish its greeting and request within this", EnvVars: []string{"BRAID_SOCKS_HANDSHAKE_TIMEOUT"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "connect-timeout", Value: mux.DefaultConfig().ConnectTimeout, Usage: "how long a CONNECT waits for the exit's answer", EnvVars: []string{"BRAID_CONNECT_TIMEOUT"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "idle-timeout", Value: 0, Usage: "close proxied connections idle this long (0: never)", EnvVars: []string{"BRAID_IDLE_TIMEOUT"}}),
		}, append(logFlags(), adminFlags()...)...),
		Action: runClient,
	})
}

func runClient(c *cli.Context) error {
	if err := requireFlags(c, "secret-file", "exit"); err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	secret, err := loadSecret(c.String("secret-file"), log)
	if err != nil {
		return err
	}
	var specs []linkSpec
	for _, s := range c.StringSlice("link") {
		sp, err := parseLinkSpec(s)
		if err != nil {
			return err
		}
		specs = append(specs, sp)
	}
	if len(specs) == 0 {
		n := c.Int("links")
		if n < 1 || n > 64 {
			return fmt.Errorf("braid: --links %d: want 1..64", n)
		}
		for i := range n {
			specs = append(specs, linkSpec{Name: "link" + strconv.Itoa(i), Conns: 1})
		}
	}
	if _, _, err := net.SplitHostPort(c.String("exit")); err != nil {
		return fmt.Errorf("braid: --exit %q: %w", c.String("exit"), err)
	}
	scfg := socks.DefaultConfig()
	scfg.Listen = c.String("socks")
	scfg.AllowPublic = c.Bool("allow-public")
	scfg.Logger = log
	scfg.MaxConns = c.Int("max-conns")
	scfg.HandshakeTimeout = c.Duration("socks-handshake-timeout")
	if f := c.String("socks-auth-file"); f != "" {
		if scfg.Credentials, err = socks.LoadCredentials(f); err != nil {
			return err
		}
	}
	lcfg := link.DefaultConfig()
	lcfg.Secret = secret
	lcfg.ServerName = c.String("server-name")
	lcfg.Logger = log
	bcfg := bond.DefaultConfig()
	bcfg.Logger = log
	bcfg.Grace = c.Duration("grace")
	mcfg := mux.DefaultConfig()
	mcfg.Logger = log
	mcfg.ConnectTimeout = c.Duration("connect-timeout")
	mcfg.IdleTimeout = c.Duration("idle-timeout")
	if err := mcfg.Validate(); err != nil {
		return err
	}

	cl, err := startClient(c.Context, clientOptions{
		exit: c.String("exit"), links: specs, socks: scfg, link: lcfg, bond: bcfg, mux: mcfg, log: log,
	})
	if err != nil {
		return err
	}
	log.Info("braid client: SOCKS5 ready", "addr", cl.SocksAddr().String(), "exit", c.String("exit"), "links", len(specs))
	return serveUntilDone(c, cl, admin.WithAddrs(admin.ClientSource(cl.session, cl.socks, cl.links.Redials), cl.links.Addrs), log)
}

type clientOptions struct {
	exit  string
	links []linkSpec
	socks socks.Config
	link  link.Config
	bond  bond.Config
	mux   mux.Config
	log   *slog.Logger
}

// clientNode is a running client: SOCKS5 → mux → the current tunnel (a
// bond session over every link). When a session ends for good (the exit
// forgot it, or every link was gone past the grace period) a new one is
// built.
type clientNode struct {
	o      clientOptions
	socks  *socks.Server
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	cur     *tunnel       // guarded by mu; nil between sessions
	changed chan struct{} // guarded by mu; closed when cur changes

	links admin.Links // configured links: path labels and redial counts for --admin
}

// tunnel is one bond session with its mux client and link loops.
type tunnel struct {
	sess *bond.Session
	mux  *mux.Client
}

func startClient(ctx context.Context, o clientOptions) (*clientNode, error) {
	ln, err := net.Listen("tcp", o.socks.Listen)
	if err != nil {
		return nil, fmt.Errorf("braid: socks listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cl := &clientNode{o: o, ln: ln, ctx: ctx, cancel: cancel, changed: make(chan struct{})}
	cl.socks, err = socks.NewServer(o.socks, cl.dial)
	if err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	cl.wg.Add(2)
	go func() {
		defer cl.wg.Done()
		cl.superviseTunnels()
	}()
	go func() {
		defer cl.wg.Done()
		if err := cl.socks.Serve(ln); err != nil {
			o.log.Error("braid client: socks server stopped", "err", err)
		}
	}()
	return cl, nil
}

func (cl *clientNode) SocksAddr() net.Addr { return cl.ln.Addr() }

// dial opens a stream to addr through the current tunnel, waiting for one
// (bounded by the mux connect timeout) if none is up.
func (cl *clientNode) dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.o.mux.ConnectTimeout)
	defer cancel()
	for {
		cl.mu.Lock()
		t, ch := cl.cur, cl.changed
		cl.mu.Unlock()
		if t != nil {
			c, err := t.mux.Dial(ctx, addr)
			if err == nil || !errors.Is(err, mux.ErrSessionClosed) {
				return c, err
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, &mux.ConnectError{Status: mux.StatusNetworkUnreachable, Msg: "no tunnel to the exit"}
		}
	}
}

func (cl *clientNode) setTunnel(t *tunnel) {
	cl.mu.Lock()
	cl.cur = t
	close(cl.changed)
	cl.changed = make(chan struct{})
	cl.mu.Unlock()
}

// superviseTunnels keeps one tunnel up for as long as the client runs.
func (cl *clientNode) superviseTunnels() {
	backoff := newBackoff()
	for cl.ctx.Err() == nil {
		start := time.Now()
		err := cl.runTunnel()
		if cl.ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff.reset()
		}
		cl.o.log.Warn("braid client: session ended, starting a new one", "err", err)
		if !backoff.wait(cl.ctx) {
			return
		}
	}
}

// runTunnel builds a session, dials every link, and returns when the
// session ends.
func (cl *clientNode) runTunnel() error {
	sess, err := bond.NewClient(cl.o.bond)
	if err != nil {
		return err
	}
	mc, err := mux.NewClient(sess, cl.o.mux)
	if err != nil {
		sess.Close()
		return err
	}
	ctx, cancel := context.WithCancel(cl.ctx)
	var wg sync.WaitGroup
	for _, sp := range cl.o.links {
		for i := range sp.Conns {
			name := sp.Name
			if name == "" {
				name = sp.To
				if sp.Dev != "" {
					name = sp.Dev
				}
			}
			if sp.Conns > 1 {
				name += "#" + strconv.Itoa(i)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl.runLink(ctx, sess, sp, name)
			}()
		}
	}
	cl.setTunnel(&tunnel{sess: sess, mux: mc})
	select {
	case <-sess.Done():
	case <-mc.Done():
	case <-cl.ctx.Done():
	}
	cl.setTunnel(nil)
	cancel()
	mc.Close()
	sess.Close()
	wg.Wait()
	return sess.Err()
}

// runLink keeps one link of the session up, redialing with backoff and
// jitter.
func (cl *clientNode) runLink(ctx context.Context, sess *bond.Session, sp linkSpec, name string) {
	log := cl.o.log.With("link", name)
	cl.links.Register(name, linkAddr(sp, cl.o.exit))
	backoff := newBackoff()
	for ctx.Err() == nil {
		start := time.Now()
		err := cl.linkOnce(ctx, sess, sp, name)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			backoff.reset()
		}
		log.Warn("braid client: link down, redialing", "err", err, "in", backoff.next.Round(time.Millisecond))
		if !backoff.wait(ctx) {
			return
		}
		cl.links.Redialed(name)
	}
}

func (cl *clientNode) linkOnce(ctx context.Context, sess *bond.Session, sp linkSpec, name string) error {
	raw, err := dialLink(ctx, sp, cl.o.exit, cl.o.link.HandshakeTimeout)
	if err != nil {
		return err
	}
	conn, err := link.Client(ctx, raw, cl.o.link)
	if err != nil {
		raw.Close()
		return err
	}
	l, err := sess.AddLink(ctx, conn, bond.LinkOptions{Name: name, Backup: sp.Backup})
	if err != nil {
		return err
	}
	select {
	case <-l.Done():
		return l.Err()
	case <-ctx.Done():
		l.Close()
		return ctx.Err()
	}
}

// Close stops the SOCKS server and every tunnel, and waits for them.
func (cl *clientNode) Close() error {
	cl.once.Do(func() {
		cl.cancel()
		cl.socks.Close()
		cl.wg.Wait()
	})
	return nil
}

// backoff is exponential from 100 ms to 10 s with ±50% jitter, so links
// of many clients do not redial in lockstep after an exit restart.
type backoff struct{ next time.Duration }

func newBackoff() *backoff { return &backoff{next: 100 * time.Millisecond} }
func (b *backoff) reset()  { b.next = 100 * time.Millisecond }

// wait sleeps the jittered delay; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next)
	b.next = min(2*b.next, 10*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// session returns the current tunnel's bond session, or nil.
func (cl *clientNode) session() *bond.Session {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.cur == nil {
		return nil
	}
	return cl.cur.sess
}

// currentStats returns the current session's stats (zero if none).
func (cl *clientNode) currentStats() bond.Stats {
	if s := cl.session(); s != nil {
		return s.Stats()
	}
	return bond.Stats{}
}
