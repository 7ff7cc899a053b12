package bondtest

import (
	"net"
	"sync/atomic"
	"time"
)

// Conn is one end of a Link. It implements net.Conn and CloseWrite; all
// methods are safe for concurrent use, and concurrent Writes do not
// interleave.
type Conn struct {
	link          *Link
	in, out       *dir
	local, remote Addr
	closed        atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

// Link returns the link c belongs to.
func (c *Conn) Link() *Link { return c.link }

// Read returns data whose delivery time has passed, waiting for the next
// delivery otherwise. After the peer's FIN (Close or CloseWrite) and all
// data before it, Read returns io.EOF.
func (c *Conn) Read(p []byte) (int, error) { return c.in.readInto(p) }

// Write queues p on the link, blocking while the send queue or the
// receiver's buffer is full. On error it returns how much was queued.
func (c *Conn) Write(p []byte) (int, error) { return c.out.write(p) }

// Close ends both directions at this end: a FIN follows the data already
// written, data not yet read here is lost, the peer's Writes fail, and
// this end's pending calls return ErrClosed. Close is idempotent.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.out.shutWrite(ErrClosed)
	c.in.shutRead()
	return nil
}

// CloseWrite half-closes: the peer reads io.EOF after the data already
// written, this end can still read, and later Writes fail with
// ErrWriteClosed.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.out.shutWrite(ErrWriteClosed)
	return nil
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.in.setReadDeadline(t)
	c.out.setWriteDeadline(t)
	return nil
}

// SetReadDeadline makes pending and future Reads fail with
// os.ErrDeadlineExceeded once t has passed; the zero time clears it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.in.setReadDeadline(t)
	return nil
}

// SetWriteDeadline makes pending and future Writes fail with
// os.ErrDeadlineExceeded once t has passed; the zero time clears it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.out.setWriteDeadline(t)
	return nil
}
