package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

// Client runs the client side of the link handshake on raw, a freshly
// dialed connection to an exit: TLS 1.3, then the mutual shared-secret
// proof. It returns the *tls.Conn, ready for bond, only once the exit has
// proved it holds the secret for this very TLS session. On any error raw
// is closed. The handshake is bounded by cfg.HandshakeTimeout and ctx.
func Client(ctx context.Context, raw net.Conn, cfg Config) (net.Conn, error) {
	if err := cfg.Validate(); err != nil {
		raw.Close()
		return nil, err
	}
	key, err := deriveKey(cfg.Secret)
	if err != nil {
		raw.Close()
		return nil, err
	}
	tc := tls.Client(raw, clientTLSConfig(&cfg, raw))
	return guard(ctx, raw, cfg.HandshakeTimeout, false, func(ctx context.Context) (net.Conn, error) {
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		ekm, err := exportEKM(tc)
		if err != nil {
			return nil, err
		}
		mine := newAuth(key, roleClient, ekm)
		if _, err := tc.Write(mine.marshal()); err != nil {
			return nil, fmt.Errorf("%w: sending auth: %w", ErrAuthFailed, err)
		}
		var buf [AuthSize]byte
		if _, err := io.ReadFull(tc, buf[:]); err != nil {
			// The exit closes silently on a wrong secret, so EOF here
			// is the usual face of a secret mismatch.
			return nil, fmt.Errorf("%w: no auth from exit (wrong secret, or not a braid exit): %w", ErrAuthFailed, err)
		}
		theirs, err := parseAuth(buf[:])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		if verifyAuth([][]byte{key}, theirs, roleServer, ekm) < 0 {
			return nil, fmt.Errorf("%w: exit's proof does not match (wrong secret or man in the middle)", ErrAuthFailed)
		}
		return tc, nil
	})
}

func clientTLSConfig(cfg *Config, raw net.Conn) *tls.Config {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		RootCAs:    cfg.RootCAs,
		ServerName: cfg.ServerName,
	}
	if !cfg.verifiesServer() {
		// The AUTH exchange authenticates the exit; its certificate is
		// a throwaway self-signed one.
		tc.InsecureSkipVerify = true
	} else if tc.ServerName == "" {
		// Verify against the address dialed (an IP SAN).
		if host, _, err := net.SplitHostPort(addrString(raw.RemoteAddr())); err == nil {
			tc.ServerName = host
		}
	}
	return tc
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func exportEKM(tc *tls.Conn) ([]byte, error) {
	cs := tc.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("%w: negotiated %s, need TLS 1.3", ErrHandshake, tls.VersionName(cs.Version))
	}
	ekm, err := cs.ExportKeyingMaterial(ekmLabel, nil, ekmSize)
	if err != nil {
		return nil, fmt.Errorf("%w: export keying material: %w", ErrHandshake, err)
	}
	return ekm, nil
}

// Server is the exit side: it holds the TLS configuration (with the
// certificate generated once) and the derived keys, and authenticates
// each accepted connection with Handshake. It is safe for concurrent use.
type Server struct {
	cfg  Config
	keys [][]byte
	tls  *tls.Config
	log  *slog.Logger
}

// NewServer validates cfg and prepares the exit side, generating a
// self-signed certificate if cfg.Certificate is nil.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.logger()}
	for _, sec := range append([]Secret{cfg.Secret}, cfg.AcceptSecrets...) {
		k, err := deriveKey(sec)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	cert := cfg.Certificate
	if cert == nil {
		c, err := selfSignedCert()
		if err != nil {
			return nil, err
		}
		cert = c
	}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{*cert},
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		// No tickets: the exit then sends nothing at all after its
		// handshake flight until the client has authenticated, and
		// there is no resumption state to look after.
		SessionTicketsDisabled: true,
	}
	return s, nil
}

// Handshake runs the exit side of the link handshake on raw, a freshly
// accepted connection. It returns the *tls.Conn once the client has proved
// it holds the secret for this TLS session and the exit has answered with
// its own proof. The exit writes no application byte before the client's
// proof checks out; on failure it closes raw without a word (after holding
// it until the deadline if cfg.HoldOnFailure), and even TLS alerts before
// the server's hello are suppressed.
func (s *Server) Handshake(ctx context.Context, raw net.Conn) (net.Conn, error) {
	tc := tls.Server(&quietConn{Conn: raw}, s.tls)
	return guard(ctx, raw, s.cfg.HandshakeTimeout, s.cfg.HoldOnFailure, func(ctx context.Context) (net.Conn, error) {
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		ekm, err := exportEKM(tc)
		if err != nil {
			return nil, err
		}
		var buf [AuthSize]byte
		if _, err := io.ReadFull(tc, buf[:]); err != nil {
			return nil, fmt.Errorf("%w: reading client auth: %w", ErrAuthFailed, err)
		}
		theirs, err := parseAuth(buf[:])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		i := verifyAuth(s.keys, theirs, roleClient, ekm)
		if i < 0 {
			return nil, fmt.Errorf("%w: client's proof does not match", ErrAuthFailed)
		}
		mine := newAuth(s.keys[i], roleServer, ekm)
		if _, err := tc.Write(mine.marshal()); err != nil {
			return nil, fmt.Errorf("link: sending auth: %w", err)
		}
		return tc, nil
	})
}

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return now.
var aLongTimeAgo = time.Unix(1, 0)

// guard runs a handshake step on raw under one deadline (timeout, or
// ctx's if sooner) and aborts it when ctx is cancelled. On failure it
// optionally drains raw until the deadline, then closes raw.
func guard(ctx context.Context, raw net.Conn, timeout time.Duration, hold bool, step func(context.Context) (net.Conn, error)) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("link: handshake: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, fmt.Errorf("link: set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(aLongTimeAgo) })
	defer stop()

	c, err := step(ctx)
	if err == nil && !stop() {
		// ctx ended just as the step finished; the deadline is now in
		// the past, so the conn is useless.
		err = errors.New("link: handshake interrupted")
	}
	if err == nil {
		if err = raw.SetDeadline(time.Time{}); err != nil {
			err = fmt.Errorf("link: clear deadline: %w", err)
		}
	}
	if err == nil {
		return c, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%w)", err, ctxErr)
	}
	if hold {
		// Until the deadline, a refused conn looks like one still
		// waiting for more; the peer learns nothing from the timing.
		_, _ = io.Copy(io.Discard, raw)
	}
	// Close raw, not the TLS conn: no close_notify, nothing encrypted
	// for an unauthenticated peer.
	raw.Close()
	return nil, err
}

// quietConn drops the plaintext alert records a TLS server writes before
// its first handshake record, i.e. when a ClientHello is refused, so a
// prober that is not a TLS 1.3 client gets no byte at all back.
type quietConn struct {
	net.Conn
	spoke atomic.Bool
}

func (c *quietConn) Write(p []byte) (int, error) {
	if !c.spoke.Load() {
		if onlyAlerts(p) {
			return len(p), nil
		}
		c.spoke.Store(true)
	}
	return c.Conn.Write(p)
}

// NetConn exposes the socket, for callers that unwrap to set socket
// options (tls.Conn.NetConn returns the quietConn).
func (c *quietConn) NetConn() net.Conn { return c.Conn }

// onlyAlerts reports whether p is one or more whole plaintext TLS alert
// records.
func onlyAlerts(p []byte) bool {
	const recordTypeAlert, headerLen = 21, 5
	if len(p) == 0 {
		return false
	}
	for len(p) > 0 {
		if len(p) < headerLen || p[0] != recordTypeAlert {
			return false
		}
		n := headerLen + (int(p[3])<<8 | int(p[4]))
		if len(p) < n {
			return false
		}
		p = p[n:]
	}
	return true
}

// selfSignedCert makes the exit's throwaway certificate. Its only job is
// to let TLS run; nobody verifies it, the AUTH exchange authenticates.
func selfSignedCert() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("link: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("link: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "braid exit"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("link: self-signed certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
