package socks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/braid-proxy/braid/internal/iox"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	socks5 "github.com/things-go/go-socks5"
	"github.com/things-go/go-socks5/statute"
)

// SOCKS5 reply codes (RFC 1928 section 6) used here; 2 (not allowed by
// ruleset) only ever comes from a Dialer error's ReplyCode.
const (
	repSuccess             byte = 0
	repGeneralFailure      byte = 1
	repNetworkUnreachable  byte = 3
	repHostUnreachable     byte = 4
	repConnectionRefused   byte = 5
	repTTLExpired          byte = 6
	repCommandNotSupported byte = 7
	repAddrNotSupported    byte = 8
)

// handleConnect replaces go-socks5's CONNECT handler: it dials through
// s.dial with the unresolved destination, sends our own reply and relays
// with half-close.
func (s *Server) handleConnect(_ context.Context, w io.Writer, req *socks5.Request) error {
	cc, ok := w.(*clientConn)
	if !ok {
		return fmt.Errorf("socks: internal: handler got %T, want *clientConn", w)
	}
	if err := cc.beginRequest(); err != nil {
		return fmt.Errorf("socks: clear handshake deadline: %w", err)
	}
	addr, err := destination(req.RawDestAddr)
	if err != nil {
		// Never dialed: an empty name would mean "this host" to most
		// dialers. Host unreachable is what the exit would answer too.
		s.sendReply(cc.Conn, repHostUnreachable, nil)
		s.log.Debug("socks: bad destination", "remote", cc.RemoteAddr(), "err", err)
		return nil
	}
	up, err := s.dial(s.ctx, addr)
	if err == nil && up == nil {
		err = errors.New("socks: dialer returned neither conn nor error")
	}
	if err != nil {
		code := replyCode(err)
		s.sendReply(cc.Conn, code, nil)
		s.log.Debug("socks: connect failed", "remote", cc.RemoteAddr(), "dest", addr, "reply", code, "err", err)
		return nil
	}
	if !cc.setUpstream(up) {
		up.Close() // server closed while dialing
		return nil
	}
	if err := s.sendReply(cc.Conn, repSuccess, up.LocalAddr()); err != nil {
		return nil // serveConn closes both
	}
	s.log.Debug("socks: connected", "remote", cc.RemoteAddr(), "dest", addr)
	// req.Reader is go-socks5's bufio.Reader over cc: it may already hold
	// bytes the client pipelined after the request, so read from it.
	s.relay(cc, req.Reader, up)
	return nil
}

// handleUnsupported answers BIND and UDP ASSOCIATE with 7.
func (s *Server) handleUnsupported(_ context.Context, w io.Writer, req *socks5.Request) error {
	cc, ok := w.(*clientConn)
	if !ok {
		return fmt.Errorf("socks: internal: handler got %T, want *clientConn", w)
	}
	cc.beginRequest()
	s.sendReply(cc.Conn, repCommandNotSupported, nil)
	s.log.Debug("socks: command not supported", "remote", cc.RemoteAddr(), "command", req.Command)
	return nil
}

// relay copies both ways until both directions end. EOF from one side is
// passed on as a half-close (CloseWrite) and the other direction keeps
// going; an error in either direction tears both down.
func (s *Server) relay(cc *clientConn, fromClient io.Reader, up net.Conn) {
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if _, err := iox.Copy(cc.Conn, up); err != nil {
			cc.Close()
			return
		}
		closeWrite(cc.Conn)
	}()
	if _, err := iox.Copy(up, fromClient); err != nil {
		cc.Close()
	} else {
		// Without CloseWrite the upstream cannot learn that the app is
		// done; the other direction then runs until the upstream closes.
		closeWrite(up)
	}
	<-done
	cc.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// sendReply writes a SOCKS5 reply. go-socks5's SendReply is not used: on
// success it turns a non-TCP bound address (a mux stream) into reply 8.
// Here such an address, and every failure reply, carries 0.0.0.0:0.
func (s *Server) sendReply(w io.Writer, code byte, bnd net.Addr) error {
	ip, port := netip.IPv4Unspecified(), 0
	if code == repSuccess {
		if ta, ok := bnd.(*net.TCPAddr); ok && ta != nil {
			if a, ok := netip.AddrFromSlice(ta.IP); ok {
				ip = a.Unmap()
			}
			port = ta.Port
		}
	}
	b := make([]byte, 0, 4+16+2)
	b = append(b, statute.VersionSocks5, code, 0)
	if ip.Is4() {
		a := ip.As4()
		b = append(append(b, statute.ATYPIPv4), a[:]...)
	} else {
		a := ip.As16()
		b = append(append(b, statute.ATYPIPv6), a[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	s.countReply(code)
	_, err := w.Write(b)
	return err
}

// replyCode maps a dial error to a SOCKS5 reply code. An error that knows
// its code (ReplyCode() byte, e.g. mux's *ConnectError) wins; otherwise
// system errors are mapped, and anything else is a general failure.
func replyCode(err error) byte {
	var rc interface{ ReplyCode() byte }
	if errors.As(err, &rc) {
		// 0 would tell the client it succeeded; >8 is unassigned.
		if c := rc.ReplyCode(); c >= repGeneralFailure && c <= repAddrNotSupported {
			return c
		}
		return repGeneralFailure
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return repConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return repNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return repHostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return repTTLExpired
	}
	// A local dialer that cannot resolve the name: the host is unknown.
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return repHostUnreachable
	}
	return repGeneralFailure
}

// destination turns the parsed request address into the Dialer's "host:port".
// Names are checked, not resolved; IP literals sent as names are accepted.
func destination(a *statute.AddrSpec) (string, error) {
	if a == nil {
		return "", fmt.Errorf("%w: missing address", errBadDestination)
	}
	if a.Port <= 0 || a.Port > 65535 {
		return "", fmt.Errorf("%w: port %d", errBadDestination, a.Port)
	}
	port := strconv.Itoa(a.Port)
	switch a.AddrType {
	case statute.ATYPDomain:
		if validHostname(a.FQDN) {
			return net.JoinHostPort(a.FQDN, port), nil
		}
		if ip, err := netip.ParseAddr(a.FQDN); err == nil && ip.Zone() == "" {
			return net.JoinHostPort(ip.String(), port), nil
		}
		return "", fmt.Errorf("%w: bad host name %q", errBadDestination, a.FQDN)
	case statute.ATYPIPv4, statute.ATYPIPv6:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return "", fmt.Errorf("%w: bad IP", errBadDestination)
		}
		return net.JoinHostPort(ip.Unmap().String(), port), nil
	}
	return "", fmt.Errorf("%w: address type %d", errBadDestination, a.AddrType)
}

// validHostname accepts dot-separated labels of letters, digits, '-' and
// '_' (1..63 bytes each, 253 in all, one trailing dot allowed). It keeps
// control bytes, spaces, colons and the like away from the Dialer.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
