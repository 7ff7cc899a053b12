package bondtest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// Errors returned by Conn methods. Test them with errors.Is; expired
// deadlines return os.ErrDeadlineExceeded itself, as package net does.
var (
	// ErrClosed: the Conn itself was closed (Read or Write after Close).
	// It matches net.ErrClosed.
	ErrClosed = fmt.Errorf("bondtest: use of closed connection: %w", net.ErrClosed)
	// ErrLinkClosed: Link.Close tore the whole link down, like a reset.
	// It matches net.ErrClosed.
	ErrLinkClosed = fmt.Errorf("bondtest: link closed: %w", net.ErrClosed)
	// ErrPeerClosed: Write after the peer closed its end. It matches
	// io.ErrClosedPipe.
	ErrPeerClosed = fmt.Errorf("bondtest: peer closed: %w", io.ErrClosedPipe)
	// ErrWriteClosed: Write after CloseWrite on the same end.
	ErrWriteClosed = errors.New("bondtest: write after CloseWrite")
	// ErrInvalidConfig: LinkConfig.Validate refused a config.
	ErrInvalidConfig = errors.New("bondtest: invalid link config")
)

const (
	// SegmentSize is the largest unit a Write is cut into; each segment is
	// scheduled and delivered as a whole.
	SegmentSize = 16 << 10
	// DefaultQueueBytes is QueueBytes when left 0.
	DefaultQueueBytes = 64 << 10
	// MinRecvBuffer is the smallest default RecvBuffer.
	MinRecvBuffer = 4 << 20
)

// LinkConfig shapes one direction of a fake link.
type LinkConfig struct {
	// Rate is the serialisation rate in bytes per second; 0 means
	// unlimited (segments are transmitted the moment they are written).
	Rate int64
	// Delay is the one-way propagation delay added after transmission.
	Delay time.Duration
	// QueueBytes is how many written bytes may wait untransmitted before
	// Write blocks, like the kernel's unsent queue under TCP_NOTSENT_LOWAT.
	// 0 means DefaultQueueBytes.
	QueueBytes int
	// RecvBuffer is how many written bytes may be in flight or delivered
	// but not yet read before Write blocks, like the receiver's socket
	// buffer and window. 0 means max(MinRecvBuffer, 2*Rate*Delay), which
	// never limits goodput and follows SetRate.
	RecvBuffer int
}

// DefaultConfig returns an unshaped direction: unlimited rate, no delay,
// default buffers.
func DefaultConfig() LinkConfig {
	return LinkConfig{QueueBytes: DefaultQueueBytes}
}

// Validate reports a negative field or a rate-delay product too large to
// size a buffer with.
func (c LinkConfig) Validate() error {
	switch {
	case c.Rate < 0:
		return fmt.Errorf("%w: Rate %d < 0", ErrInvalidConfig, c.Rate)
	case c.Delay < 0:
		return fmt.Errorf("%w: Delay %v < 0", ErrInvalidConfig, c.Delay)
	case c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d < 0", ErrInvalidConfig, c.QueueBytes)
	case c.RecvBuffer < 0:
		return fmt.Errorf("%w: RecvBuffer %d < 0", ErrInvalidConfig, c.RecvBuffer)
	}
	if c.RecvBuffer == 0 && bytesIn(c.Delay, c.Rate) > math.MaxInt32 {
		return fmt.Errorf("%w: Rate*Delay (%d B/s * %v) too large for a default RecvBuffer", ErrInvalidConfig, c.Rate, c.Delay)
	}
	return nil
}

func (c LinkConfig) queueBytes() int64 {
	if c.QueueBytes > 0 {
		return int64(c.QueueBytes)
	}
	return DefaultQueueBytes
}

// recvBuffer is RecvBuffer, or the default for rate.
func (c LinkConfig) recvBuffer(rate int64) int64 {
	if c.RecvBuffer > 0 {
		return int64(c.RecvBuffer)
	}
	return max(MinRecvBuffer, 2*min(bytesIn(c.Delay, rate), math.MaxInt64/2))
}
