package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
)

// ErrSOCKS wraps every failure of the SOCKS5 client handshake.
var ErrSOCKS = errors.New("bench: socks5")

// SOCKSReplyError is a SOCKS5 reply with a non-zero status.
type SOCKSReplyError struct{ Code byte }

func (e *SOCKSReplyError) Error() string { return fmt.Sprintf("bench: socks5 reply code %d", e.Code) }

// Unwrap makes errors.Is(err, ErrSOCKS) hold.
func (e *SOCKSReplyError) Unwrap() error { return ErrSOCKS }

// ReplyCode returns the SOCKS5 reply code.
func (e *SOCKSReplyError) ReplyCode() byte { return e.Code }

// SOCKSConnect performs a no-auth SOCKS5 CONNECT to host:port on c (host an
// IP literal or a name the proxy resolves). On success c carries the
// proxied stream. It reads exactly the reply, so no payload is consumed.
func SOCKSConnect(c net.Conn, host string, port uint16) error {
	req := []byte{5, 1, 0} // greeting: version 5, one method, no auth
	req = append(req, 5, 1, 0)
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		b := a.As4()
		req = append(req, 1)
		req = append(req, b[:]...)
	} else if err == nil {
		b := a.As16()
		req = append(req, 4)
		req = append(req, b[:]...)
	} else {
		if len(host) == 0 || len(host) > 255 {
			return fmt.Errorf("%w: host name length %d", ErrSOCKS, len(host))
		}
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	req = append(req, byte(port>>8), byte(port))
	// Greeting and request in one write: the server reads them in order.
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("%w: write: %w", ErrSOCKS, err)
	}
	// Unbuffered reads of exact sizes: nothing past the reply is consumed.
	return readSOCKSReplies(exactReader{c})
}

// exactReader hides any io.WriterTo/ReaderFrom so io.ReadFull reads only
// what it is asked for.
type exactReader struct{ r io.Reader }

func (e exactReader) Read(p []byte) (int, error) { return e.r.Read(p) }

// readSOCKSReplies parses the method selection and the CONNECT reply.
func readSOCKSReplies(r io.Reader) error {
	var m [2]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return fmt.Errorf("%w: method reply: %w", ErrSOCKS, err)
	}
	if m[0] != 5 || m[1] != 0 {
		return fmt.Errorf("%w: method reply %x, want 0500", ErrSOCKS, m)
	}
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return fmt.Errorf("%w: reply header: %w", ErrSOCKS, err)
	}
	if h[0] != 5 {
		return fmt.Errorf("%w: reply version %d", ErrSOCKS, h[0])
	}
	var skip int
	switch h[3] {
	case 1:
		skip = 4
	case 4:
		skip = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return fmt.Errorf("%w: reply name length: %w", ErrSOCKS, err)
		}
		skip = int(l[0])
	default:
		return fmt.Errorf("%w: reply address type %d", ErrSOCKS, h[3])
	}
	var rest [255 + 2]byte
	if _, err := io.ReadFull(r, rest[:skip+2]); err != nil {
		return fmt.Errorf("%w: reply address: %w", ErrSOCKS, err)
	}
	if h[1] != 0 {
		return &SOCKSReplyError{Code: h[1]}
	}
	return nil
}
