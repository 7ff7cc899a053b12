package mux

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
)

// Config tunes a mux session. Client and exit each have their own; the
// fields that shape yamux's flow control (StreamWindow) should match on
// both sides, the others are local policy.
type Config struct {
	// StreamWindow is yamux's MaxStreamWindowSize: how many bytes a stream
	// may have in flight unread. A stream moves at most one window per
	// round trip, so size it to bandwidth × RTT of the bonded path (the
	// yamux default of 256 KiB caps a stream at 256 KiB per RTT, 10 MB/s on
	// a 25 ms path). It is also the most memory one unread stream can pin.
	// At least 256 KiB (yamux's minimum), at most 1 GiB.
	StreamWindow uint32

	// MaxStreams is the most streams open at once: the client refuses
	// further Dials locally, the exit answers StatusGeneralFailure. With
	// StreamWindow it bounds a session's buffered memory.
	MaxStreams int

	// MaxPendingConnects (exit) is the most target dials in progress at
	// once; a CONNECT beyond it is answered StatusGeneralFailure at once
	// rather than queued, so a burst of unreachable targets cannot pin the
	// exit. At most MaxStreams.
	MaxPendingConnects int

	// ConnectTimeout bounds establishing a stream. Client: how long Dial
	// waits for the exit's reply (give it a little more than the exit's, so
	// the exit's own timeout status gets back). Exit: the dial timeout to
	// the target.
	ConnectTimeout time.Duration

	// HandshakeTimeout (exit) is how long a new stream may take to deliver
	// its CONNECT header, and how long writing a refusal may take.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a stream when no byte has moved in either
	// direction for this long; 0 disables it.
	IdleTimeout time.Duration

	// StreamCloseTimeout is how long a stream may wait for the peer's FIN
	// after this side sent its own before yamux resets it. yamux v0.1.2 has
	// no other way to reset a stream, so this is both how a peer still
	// sending to a stream we closed is stopped, and the longest a
	// half-closed stream (CloseWrite, then reading a long reply) may still
	// receive. 0 never resets: streams the peer never finishes stay in
	// memory until the session ends.
	StreamCloseTimeout time.Duration

	// StreamOpenTimeout is yamux's: when the peer has not acknowledged a
	// new stream within it, yamux closes the whole session. 0 disables it,
	// the default, because a late acknowledgement during a bond failover is
	// not a dead session; the bond detects dead links.
	StreamOpenTimeout time.Duration

	// Logger receives session events (Info/Warn) and per-stream results
	// (Debug, with destination). nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: an 8 MiB window (about 330 MB/s per
// stream at 25 ms RTT), 4096 streams, 256 pending connects, 10 s connect
// and handshake timeouts, no idle timeout, 5 minutes close timeout (yamux's
// default) and no open timeout.
func DefaultConfig() Config {
	return Config{
		StreamWindow:       8 << 20,
		MaxStreams:         16384,
		MaxPendingConnects: 256,
		ConnectTimeout:     10 * time.Second,
		HandshakeTimeout:   10 * time.Second,
		IdleTimeout:        0,
		StreamCloseTimeout: 5 * time.Minute,
		StreamOpenTimeout:  0,
	}
}

// Limits enforced by Validate.
const (
	minStreamWindow = 256 << 10 // yamux refuses less
	maxStreamWindow = 1 << 30
	maxMaxStreams   = 1 << 20
)

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch {
	case c.StreamWindow < minStreamWindow || c.StreamWindow > maxStreamWindow:
		return bad("StreamWindow %d outside [%d, %d]", c.StreamWindow, minStreamWindow, maxStreamWindow)
	case c.MaxStreams < 1 || c.MaxStreams > maxMaxStreams:
		return bad("MaxStreams %d outside [1, %d]", c.MaxStreams, maxMaxStreams)
	case c.MaxPendingConnects < 1:
		return bad("MaxPendingConnects %d < 1", c.MaxPendingConnects)
	case c.MaxPendingConnects > c.MaxStreams:
		return bad("MaxPendingConnects %d > MaxStreams %d: every pending connect is a stream",
			c.MaxPendingConnects, c.MaxStreams)
	case c.ConnectTimeout <= 0:
		return bad("ConnectTimeout %v must be > 0", c.ConnectTimeout)
	case c.HandshakeTimeout <= 0:
		return bad("HandshakeTimeout %v must be > 0", c.HandshakeTimeout)
	case c.IdleTimeout < 0:
		return bad("IdleTimeout %v < 0", c.IdleTimeout)
	case c.StreamCloseTimeout < 0:
		return bad("StreamCloseTimeout %v < 0", c.StreamCloseTimeout)
	case c.StreamOpenTimeout < 0:
		return bad("StreamOpenTimeout %v < 0", c.StreamOpenTimeout)
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// acceptBacklog is yamux's AcceptBacklog: streams opened but not yet
// accepted (the client also blocks once this many are unacknowledged). The
// exit accepts in a tight loop, so the default is plenty; it must be the
// same on both sides, hence not configurable.
const acceptBacklog = 256

// noWriteTimeout disables yamux's ConnectionWriteTimeout in effect: a
// write to the bond may legitimately block through a failover, and yamux
// handles an expired write badly (the frame stays queued, a window update
// can be lost for good). The bond closes its conn when it is really dead.
const noWriteTimeout = 100 * 365 * 24 * time.Hour

func (c Config) yamuxConfig(log *slog.Logger) *yamux.Config {
	return &yamux.Config{
		AcceptBacklog: acceptBacklog,
		// Liveness is the bond's job; a yamux ping that is late during a
		// failover would tear down every stream for nothing.
		EnableKeepAlive:        false,
		KeepAliveInterval:      time.Minute, // unused, but yamux requires > 0
		ConnectionWriteTimeout: noWriteTimeout,
		MaxStreamWindowSize:    c.StreamWindow,
		StreamOpenTimeout:      c.StreamOpenTimeout,
		StreamCloseTimeout:     c.StreamCloseTimeout,
		Logger:                 yamuxLogger{log},
	}
}

// yamuxLogger routes yamux's log lines ("[ERR] yamux: ...", "[WARN] ...")
// to slog: errors at Warn (they are about one session, which its owner
// handles), everything else at Debug (mostly frames for streams already
// reset, which is normal).
type yamuxLogger struct{ l *slog.Logger }

func (y yamuxLogger) Print(v ...any)                 { y.log(fmt.Sprint(v...)) }
func (y yamuxLogger) Printf(format string, v ...any) { y.log(fmt.Sprintf(format, v...)) }
func (y yamuxLogger) Println(v ...any)               { y.log(fmt.Sprintln(v...)) }

func (y yamuxLogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	level := slog.LevelDebug
	if rest, ok := strings.CutPrefix(msg, "[ERR] "); ok {
		level, msg = slog.LevelWarn, rest
	} else if rest, ok := strings.CutPrefix(msg, "[WARN] "); ok {
		msg = rest
	}
	y.l.Log(context.Background(), level, msg)
}
