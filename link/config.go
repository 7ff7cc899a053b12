package link

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Errors returned by this package. Callers test them with errors.Is; the
// returned errors also wrap the underlying cause (a TLS alert, an
// os.ErrDeadlineExceeded, a context error).
var (
	// ErrBadSecret: a secret is not SecretSize bytes in a known encoding.
	ErrBadSecret = errors.New("link: bad secret")
	// ErrSecretFileMode: a secret file is accessible to group or others.
	// LoadSecret still returns the secret; the caller should warn.
	ErrSecretFileMode = errors.New("link: secret file is accessible to group or others")
	// ErrInvalidConfig: Config.Validate refused a setting.
	ErrInvalidConfig = errors.New("link: invalid config")
	// ErrHandshake: the TLS 1.3 handshake failed (not TLS, wrong version,
	// certificate not trusted, timeout).
	ErrHandshake = errors.New("link: TLS handshake failed")
	// ErrAuthFailed: the peer did not prove it holds the shared secret for
	// this TLS session (wrong secret, man in the middle, replay, garbage,
	// or it closed the connection before proving anything).
	ErrAuthFailed = errors.New("link: peer failed authentication")
	// ErrMalformed: an AUTH message has the wrong size or an unknown role.
	ErrMalformed = errors.New("link: malformed auth message")
	// ErrVersion: an AUTH message carries a link protocol version this
	// build does not speak.
	ErrVersion = errors.New("link: unsupported link protocol version")
	// ErrClosed: Accept on a closed Listener. It wraps net.ErrClosed so
	// generic accept loops recognise it.
	ErrClosed = fmt.Errorf("link: listener closed: %w", net.ErrClosed)
)

// MaxAcceptSecrets bounds Config.AcceptSecrets, so a failed
// authentication costs at most a handful of HMACs.
const MaxAcceptSecrets = 4

// Config configures both ends of a link. The zero value is not valid:
// start from DefaultConfig and set Secret.
type Config struct {
	// Secret is the shared secret (SecretSize bytes, see ParseSecret).
	// Both ends must hold the same one. Required.
	Secret Secret
	// AcceptSecrets are further secrets the exit accepts, for rotating
	// the secret without a flag day: put the new secret in Secret and the
	// old one here until every client has the new one. The exit answers
	// with whichever secret the client used. Ignored by Client. At most
	// MaxAcceptSecrets.
	AcceptSecrets []Secret
	// Certificate is the exit's certificate. nil makes NewServer generate
	// a self-signed ECDSA P-256 one in memory, once per Server; that is
	// enough, because the shared-secret proof, not the certificate,
	// authenticates the exit. Ignored by Client.
	Certificate *tls.Certificate
	// RootCAs, if set, makes Client verify the exit's certificate chain
	// against these roots (for an exit with a real certificate). With
	// RootCAs nil and ServerName empty the chain is not verified.
	RootCAs *x509.CertPool
	// ServerName is the name Client verifies the exit's certificate for
	// and sends as SNI. Setting it alone verifies against the system
	// roots. With RootCAs set and ServerName empty, the certificate must
	// be valid for the IP address dialed.
	ServerName string
	// HandshakeTimeout bounds the whole handshake, TLS and AUTH together;
	// a peer that has not authenticated by then is dropped.
	HandshakeTimeout time.Duration
	// HoldOnFailure makes the exit keep a connection that failed the
	// handshake open (reading and discarding) until HandshakeTimeout
	// before closing it, so a prober cannot tell by timing whether, or
	// why, it was refused. Ignored by Client.
	HoldOnFailure bool
	// MaxPending bounds the handshakes a Listener runs at once; beyond
	// it the Listener stops accepting and lets the kernel queue wait.
	MaxPending int
	// Logger receives failed-handshake reports at debug level; nil means
	// slog.Default(). Secrets and MACs are never logged.
	Logger *slog.Logger
}

// DefaultConfig returns the settings braid ships with, without a secret.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout: 10 * time.Second,
		HoldOnFailure:    true,
		MaxPending:       1024,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Secret == nil:
		return fmt.Errorf("%w: Secret is required (braid keygen makes one)", ErrInvalidConfig)
	case len(c.Secret) != SecretSize:
		return fmt.Errorf("%w: Secret is %d bytes, want %d", ErrInvalidConfig, len(c.Secret), SecretSize)
	case len(c.AcceptSecrets) > MaxAcceptSecrets:
		return fmt.Errorf("%w: %d AcceptSecrets, at most %d", ErrInvalidConfig, len(c.AcceptSecrets), MaxAcceptSecrets)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("%w: HandshakeTimeout must be positive", ErrInvalidConfig)
	case c.MaxPending < 1:
		return fmt.Errorf("%w: MaxPending must be at least 1", ErrInvalidConfig)
	}
	for i, s := range c.AcceptSecrets {
		if len(s) != SecretSize {
			return fmt.Errorf("%w: AcceptSecrets[%d] is %d bytes, want %d", ErrInvalidConfig, i, len(s), SecretSize)
		}
		if subtle.ConstantTimeCompare(s, c.Secret) == 1 {
			return fmt.Errorf("%w: AcceptSecrets[%d] repeats Secret", ErrInvalidConfig, i)
		}
	}
	if c.Certificate != nil {
		if len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil {
			return fmt.Errorf("%w: Certificate needs a chain and a private key", ErrInvalidConfig)
		}
	}
	return nil
}

// LogValue keeps the secrets out of logs if a Config is ever logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("accept_secrets", len(c.AcceptSecrets)),
		slog.Bool("own_certificate", c.Certificate != nil),
		slog.Bool("verify_certificate", c.verifiesServer()),
		slog.String("server_name", c.ServerName),
		slog.Duration("handshake_timeout", c.HandshakeTimeout),
		slog.Bool("hold_on_failure", c.HoldOnFailure),
		slog.Int("max_pending", c.MaxPending),
	)
}

func (c *Config) verifiesServer() bool { return c.RootCAs != nil || c.ServerName != "" }

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
