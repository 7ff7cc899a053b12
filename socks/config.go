package socks

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults used by DefaultConfig.
const (
	DefaultListen           = "127.0.0.1:1080"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxConns         = 16384
)

// RFC 1929 carries each of username and password with a one-byte length.
const maxCredentialLen = 255

// maxCredentialsFileSize bounds what LoadCredentials reads, so a wrong path
// (a log file, /dev/zero) fails fast instead of eating memory.
const maxCredentialsFileSize = 1 << 20

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Listen is the TCP address ListenAndServe listens on, "host:port".
	// Validate also uses it to decide whether the proxy is public, even
	// when Serve is given a listener directly.
	Listen string
	// HandshakeTimeout bounds the whole handshake: greeting, authentication
	// and the request must all arrive within it or the connection is
	// closed. The deadline is cleared once the request is parsed, so it
	// never cuts a transfer. Must be > 0.
	HandshakeTimeout time.Duration
	// Credentials, if non-nil, enables RFC 1929 username/password
	// authentication and makes it mandatory; nil means no authentication.
	// Usernames and passwords must be 1..255 bytes. A non-nil empty map is
	// rejected because it would lock every client out. NewServer copies it.
	Credentials map[string]string
	// AllowPublic permits listening on a non-loopback address without
	// Credentials. Without it Validate refuses such a config, because an
	// unauthenticated SOCKS proxy reachable from the network is an open
	// relay.
	AllowPublic bool
	// MaxConns caps concurrent client connections (handshaking or
	// relaying). Connections over the cap are closed at once, without a
	// reply, and logged at most once per interval. Must be > 0.
	MaxConns int
	// Logger receives diagnostics; nil means slog.Default(). Credentials
	// are never logged.
	Logger *slog.Logger
}

// DefaultConfig returns a loopback-only, unauthenticated configuration.
func DefaultConfig() Config {
	return Config{
		Listen:           DefaultListen,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MaxConns:         DefaultMaxConns,
	}
}

// Validate checks every field and the cross-field rule that a public
// listener needs credentials or an explicit AllowPublic.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %w", ErrInvalidConfig, c.Listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w: listen port %q: not a number in 0..65535", ErrInvalidConfig, port)
	}
	if c.HandshakeTimeout <= 0 {
		return fmt.Errorf("%w: handshake timeout must be > 0, got %v", ErrInvalidConfig, c.HandshakeTimeout)
	}
	if c.MaxConns <= 0 {
		return fmt.Errorf("%w: max conns must be > 0, got %d", ErrInvalidConfig, c.MaxConns)
	}
	if c.Credentials != nil {
		if len(c.Credentials) == 0 {
			return fmt.Errorf("%w: credentials set but empty (use nil for no authentication)", ErrInvalidConfig)
		}
		for user, pass := range c.Credentials {
			if err := checkCredential(user, pass); err != nil {
				// The username is not secret, but keep it out of the
				// message anyway: it may be a mistyped password.
				return fmt.Errorf("%w: credentials: %w", ErrInvalidConfig, err)
			}
		}
	}
	if c.Credentials == nil && !c.AllowPublic && !isLoopbackHost(host) {
		return fmt.Errorf("%w: listen %q: %w", ErrInvalidConfig, c.Listen, ErrPublicWithoutAuth)
	}
	return nil
}

// isLoopbackHost reports whether host certainly names only loopback. An
// empty host (all interfaces) or a name other than "localhost" is treated as
// public, since it cannot be known without resolving it.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func checkCredential(user, pass string) error {
	switch {
	case len(user) == 0:
		return fmt.Errorf("empty username")
	case len(user) > maxCredentialLen:
		return fmt.Errorf("username longer than %d bytes", maxCredentialLen)
	case len(pass) == 0:
		return fmt.Errorf("empty password")
	case len(pass) > maxCredentialLen:
		return fmt.Errorf("password longer than %d bytes", maxCredentialLen)
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// LoadCredentials reads a credentials file: one "user:password" per line,
// split at the first colon (so passwords may contain colons, usernames may
// not). Blank lines and lines whose first non-blank character is '#' are
// ignored; a trailing CR is stripped; nothing else is trimmed, so spaces are
// part of the password. Control characters other than tab are refused. Errors name the line but never echo a password.
func LoadCredentials(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("socks: credentials: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("socks: credentials %s: %w", path, err)
	}
	if len(data) > maxCredentialsFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrCredentialsFile, path, maxCredentialsFileSize)
	}
	creds, err := parseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCredentialsFile, path, err)
	}
	return creds, nil
}

// parseCredentials is LoadCredentials without the file: the fuzzed part.
func parseCredentials(data []byte) (map[string]string, error) {
	creds := make(map[string]string)
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return nil, fmt.Errorf("line %d: want \"user:password\", no colon found", lineNo)
		}
		user, pass := string(line[:i]), string(line[i+1:])
		if err := checkCredential(user, pass); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		// A stray CR or NUL is almost surely an editing accident, and
		// would make the file mean something other than what it shows.
		if hasControl(user) || hasControl(pass) {
			return nil, fmt.Errorf("line %d: control character in username or password", lineNo)
		}
		if _, dup := creds[user]; dup {
			return nil, fmt.Errorf("line %d: duplicate username %q", lineNo, user)
		}
		creds[user] = pass
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("no credentials found")
	}
	return creds, nil
}
