package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/braid-proxy/braid/admin"
	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/egress"
	"github.com/braid-proxy/braid/link"
	"github.com/braid-proxy/braid/mux"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

func exitCommand() *cli.Command {
	return withConfig(&cli.Command{
		Name:      "exit",
		Usage:     "run the exit node: accept bonded links and dial targets for the client",
		UsageText: "braid exit --listen 0.0.0.0:7000 --secret-file FILE [--allow CIDR]...",
		Flags: append([]cli.Flag{
			altsrc.NewStringFlag(&cli.StringFlag{Name: "listen", Value: "0.0.0.0:7000", Usage: "address for the client's links", EnvVars: []string{"BRAID_LISTEN"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "secret-file", Usage: "file with the shared secret (braid keygen)", EnvVars: []string{"BRAID_SECRET_FILE"}}),
			altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "allow", Usage: "CIDR the exit may dial although it is internal (repeat)", EnvVars: []string{"BRAID_ALLOW"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "cert", Usage: "TLS certificate (PEM); default: self-signed, authenticated by the secret", EnvVars: []string{"BRAID_CERT"}}),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "key", Usage: "TLS private key (PEM) for --cert", EnvVars: []string{"BRAID_KEY"}}),
			altsrc.NewIntFlag(&cli.IntFlag{Name: "max-sessions", Value: 1024, Usage: "bonded sessions (clients) held at once", EnvVars: []string{"BRAID_MAX_SESSIONS"}}),
			altsrc.NewIntFlag(&cli.IntFlag{Name: "max-streams", Value: mux.DefaultConfig().MaxStreams, Usage: "concurrent proxied connections per session", EnvVars: []string{"BRAID_MAX_STREAMS"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "dial-timeout", Value: 10 * time.Second, Usage: "how long the exit tries to reach a target", EnvVars: []string{"BRAID_DIAL_TIMEOUT"}}),
			altsrc.NewIntFlag(&cli.IntFlag{Name: "max-pending-connects", Value: mux.DefaultConfig().MaxPendingConnects, Usage: "target dials in progress per session; more are refused at once", EnvVars: []string{"BRAID_MAX_PENDING_CONNECTS"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "handshake-timeout", Value: link.DefaultConfig().HandshakeTimeout, Usage: "a link must finish TLS and authentication within this", EnvVars: []string{"BRAID_HANDSHAKE_TIMEOUT"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "idle-timeout", Value: 0, Usage: "close proxied connections idle this long (0: never)", EnvVars: []string{"BRAID_IDLE_TIMEOUT"}}),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "grace", Value: bond.DefaultConfig().Grace, Usage: "how long a session with no link waits for one to return", EnvVars: []string{"BRAID_GRACE"}}),
		}, append(logFlags(), adminFlags()...)...),
		Action: runExit,
	})
}

func runExit(c *cli.Context) error {
	if err := requireFlags(c, "secret-file"); err != nil {
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
	lcfg := link.DefaultConfig()
	lcfg.Secret = secret
	lcfg.Logger = log
	lcfg.HandshakeTimeout = c.Duration("handshake-timeout")
	if c.String("cert") != "" || c.String("key") != "" {
		cert, err := tls.LoadX509KeyPair(c.String("cert"), c.String("key"))
		if err != nil {
			return fmt.Errorf("braid: --cert/--key: %w", err)
		}
		lcfg.Certificate = &cert
	}
	allow, err := egress.ParsePrefixes(c.StringSlice("allow"))
	if err != nil {
		return fmt.Errorf("braid: --allow: %w", err)
	}
	bcfg := bond.DefaultConfig()
	bcfg.Logger = log
	bcfg.MaxSessions = c.Int("max-sessions")
	bcfg.Grace = c.Duration("grace")
	mcfg := mux.DefaultConfig()
	mcfg.Logger = log
	mcfg.MaxStreams = c.Int("max-streams")
	mcfg.ConnectTimeout = c.Duration("dial-timeout")
	mcfg.MaxPendingConnects = c.Int("max-pending-connects")
	if !c.IsSet("max-pending-connects") {
		// The default must not exceed a small --max-streams.
		mcfg.MaxPendingConnects = min(mcfg.MaxPendingConnects, mcfg.MaxStreams)
	}
	mcfg.IdleTimeout = c.Duration("idle-timeout")
	if err := mcfg.Validate(); err != nil {
		return err
	}
	ecfg := egress.DefaultConfig()
	ecfg.Policy.Allow = allow
	ecfg.Timeout = c.Duration("dial-timeout")
	ecfg.Logger = log
	dialer, err := egress.New(ecfg)
	if err != nil {
		return err
	}

	ex, err := startExit(c.Context, exitOptions{
		listen: c.String("listen"), link: lcfg, bond: bcfg, mux: mcfg, dial: dialer.DialContext, log: log,
	})
	if err != nil {
		return err
	}
	log.Info("braid exit: listening", "addr", ex.Addr().String(), "allow", c.StringSlice("allow"))
	return serveUntilDone(c, ex, admin.ExitSource(ex.bsrv), log)
}

type exitOptions struct {
	listen string
	link   link.Config
	bond   bond.Config
	mux    mux.Config
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	log    *slog.Logger
}

// exitNode is a running exit: link listener → bond server → mux → dial.
type exitNode struct {
	ln     *link.Listener
	bsrv   *bond.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startExit(ctx context.Context, o exitOptions) (*exitNode, error) {
	lsrv, err := link.NewServer(o.link)
	if err != nil {
		return nil, err
	}
	bsrv, err := bond.NewServer(o.bond)
	if err != nil {
		return nil, err
	}
	raw, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("braid: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &exitNode{ln: link.NewListener(raw, lsrv), bsrv: bsrv, cancel: cancel}
	e.wg.Add(2)
	go func() { // links
		defer e.wg.Done()
		for {
			conn, err := e.ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				if _, err := bsrv.AddLink(ctx, conn, bond.LinkOptions{Name: conn.RemoteAddr().String()}); err != nil {
					o.log.Warn("braid exit: link refused", "remote", conn.RemoteAddr().String(), "err", err)
				}
			}()
		}
	}()
	go func() { // sessions
		defer e.wg.Done()
		for {
			s, err := bsrv.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				err := mux.Serve(ctx, s, o.mux, o.dial)
				if err != nil && !errors.Is(err, context.Canceled) {
					o.log.Debug("braid exit: session ended", "err", err)
				}
				s.Close()
			}()
		}
	}()
	return e, nil
}

func (e *exitNode) Addr() net.Addr { return e.ln.Addr() }

// Close stops accepting, ends every session and waits for them.
func (e *exitNode) Close() error {
	e.once.Do(func() {
		e.cancel()
		e.ln.Close()
		e.bsrv.Close()
		e.wg.Wait()
	})
	return nil
}
