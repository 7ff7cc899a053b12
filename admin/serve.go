package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// HTTP server limits: the admin listener serves small GETs, so anything
// slow or large is a misbehaving or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownTimeout   = 5 * time.Second
)

// IsLoopback reports whether a listen address host:port binds only to
// loopback: a 127.0.0.0/8 or ::1 literal, or "localhost". An empty host
// binds every interface and is not loopback; other names are not
// resolved and count as not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Listen opens the admin listener. The admin endpoints have no
// authentication, so an address that is not loopback is refused with
// ErrPublicAddr unless allowPublic is set (put it behind a firewall or a
// reverse proxy with authentication then).
func Listen(addr string, allowPublic bool) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("admin: listen %q: %w", addr, err)
	}
	if !allowPublic && !IsLoopback(addr) {
		return nil, fmt.Errorf("%w: %q (the admin listener has no authentication; use 127.0.0.1:PORT, or allow a public address explicitly)", ErrPublicAddr, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen: %w", err)
	}
	return ln, nil
}

// Serve listens on a loopback addr and serves h until ctx ends; see
// Listen and ServeListener.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := Listen(addr, false)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on ln until ctx ends, then shuts down gracefully
// (in-flight requests get a few seconds) and returns nil. It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}
