package bond

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Errors returned by sessions and servers. Callers test them with errors.Is.
var (
	// ErrProtocol: the peer sent something this version cannot accept.
	ErrProtocol = errors.New("bond: protocol error")
	// ErrNoLinks: every link was gone for longer than Config.Grace.
	ErrNoLinks = errors.New("bond: all links lost for longer than the grace period")
	// ErrPeerClosed: the peer ended the session (GOAWAY).
	ErrPeerClosed = errors.New("bond: session closed by peer")
	// ErrClosed: the session or server was closed locally.
	ErrClosed = errors.New("bond: closed")
	// ErrLinkTimeout: a link heard nothing for Config.LinkTimeout.
	ErrLinkTimeout = errors.New("bond: link silent for too long")
	// ErrUnknownSession: the exit no longer knows the session a link
	// tried to join (it restarted, or the session ended there).
	ErrUnknownSession = errors.New("bond: exit does not know this session")
	// ErrVersion: the peer speaks another wire version.
	ErrVersion = errors.New("bond: unsupported protocol version")
	// ErrBusy: the exit refused a new session (too many).
	ErrBusy = errors.New("bond: exit busy")
	// ErrTooManyLinks: the session already has Config.MaxLinks links.
	ErrTooManyLinks = errors.New("bond: too many links")
	// ErrWriteClosed: Write after CloseWrite.
	ErrWriteClosed = errors.New("bond: write after CloseWrite")
)

// Config tunes a session. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// ChunkSize is the largest DATA payload. Larger chunks cost fewer
	// frames; smaller ones spread a short burst over more links.
	ChunkSize int
	// SendBuffer bounds the bytes written but not yet acknowledged by the
	// peer; Write blocks beyond it.
	SendBuffer int
	// RecvWindow bounds the bytes received but not yet read, including
	// out-of-order bytes waiting for a gap to fill. It must cover the
	// sum of the links' bandwidth × the largest delivery skew between
	// them, or the fast links idle while the slow one catches up.
	RecvWindow int
	// HeartbeatInterval is how often each link is pinged to measure its
	// RTT and prove it alive.
	HeartbeatInterval time.Duration
	// MinStallTimeout is the floor of the stall timer: a link with
	// unacknowledged data and no progress for max(MinStallTimeout,
	// srtt+4·rttvar) is stalled, and its data resent on the others.
	MinStallTimeout time.Duration
	// LinkTimeout closes a link that heard nothing at all for this long;
	// the link's Done channel tells the caller to redial.
	LinkTimeout time.Duration
	// Grace is how long a session with no link at all waits for one to
	// join before failing with ErrNoLinks.
	Grace time.Duration
	// HandshakeTimeout bounds the hello exchange of a joining link.
	HandshakeTimeout time.Duration
	// Linger bounds how long Close waits for written data to be
	// acknowledged before tearing the links down.
	Linger time.Duration
	// NotSentLowat is set as TCP_NOTSENT_LOWAT on TCP links so the
	// kernel's unsent queue stays small and the scheduler, not the
	// kernel, decides which link carries the next chunk. 0 leaves it.
	NotSentLowat int
	// MaxLinks bounds the links of one session.
	MaxLinks int
	// MaxSessions bounds the sessions a Server holds (exit side).
	MaxSessions int
	// Logger receives link events; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the settings braid ships with.
func DefaultConfig() Config {
	return Config{
		ChunkSize:         32 << 10,
		SendBuffer:        16 << 20,
		RecvWindow:        16 << 20,
		HeartbeatInterval: 250 * time.Millisecond,
		MinStallTimeout:   200 * time.Millisecond,
		LinkTimeout:       5 * time.Second,
		Grace:             30 * time.Second,
		HandshakeTimeout:  10 * time.Second,
		Linger:            5 * time.Second,
		NotSentLowat:      128 << 10,
		MaxLinks:          64,
		MaxSessions:       1024,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.ChunkSize < 1024 || c.ChunkSize > MaxChunkSize:
		return fmt.Errorf("bond: ChunkSize %d outside [1024, %d]", c.ChunkSize, MaxChunkSize)
	case c.SendBuffer < c.ChunkSize:
		return fmt.Errorf("bond: SendBuffer %d smaller than ChunkSize %d", c.SendBuffer, c.ChunkSize)
	case c.RecvWindow < 4*c.ChunkSize:
		return fmt.Errorf("bond: RecvWindow %d smaller than 4 chunks (%d)", c.RecvWindow, 4*c.ChunkSize)
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("bond: HeartbeatInterval must be positive")
	case c.MinStallTimeout <= 0:
		return fmt.Errorf("bond: MinStallTimeout must be positive")
	case c.LinkTimeout < 2*c.HeartbeatInterval:
		return fmt.Errorf("bond: LinkTimeout %v must be at least two heartbeats (%v)", c.LinkTimeout, 2*c.HeartbeatInterval)
	case c.LinkTimeout <= c.MinStallTimeout:
		return fmt.Errorf("bond: LinkTimeout %v must exceed MinStallTimeout %v", c.LinkTimeout, c.MinStallTimeout)
	case c.Grace < 0 || c.Linger < 0:
		return fmt.Errorf("bond: Grace and Linger must not be negative")
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("bond: HandshakeTimeout must be positive")
	case c.NotSentLowat < 0:
		return fmt.Errorf("bond: NotSentLowat must not be negative")
	case c.MaxLinks < 1 || c.MaxSessions < 1:
		return fmt.Errorf("bond: MaxLinks and MaxSessions must be at least 1")
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// tick is the period of a session's housekeeping: stall and silence
// checks, heartbeats, the grace timer.
func (c *Config) tick() time.Duration {
	return min(c.MinStallTimeout/10, c.HeartbeatInterval/4, 20*time.Millisecond)
}

// LinkOptions describe one link as its caller knows it.
type LinkOptions struct {
	// Name labels the link in stats and logs (e.g. "dsl", "lte#2").
	Name string
	// Backup links carry data only while no other link is healthy.
	Backup bool
}
