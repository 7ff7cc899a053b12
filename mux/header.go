package mux

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// The CONNECT header opens every stream; the exit answers with a reply.
// Layouts follow SOCKS5 (RFC 1928) so the address types and status codes
// need no translation, minus the fields a mux hop does not need. All
// integers are big-endian.
//
// Request (client → exit), 6 to 260 bytes:
//
//	 0         1         2                        2+A       4+A
//	+---------+---------+------------------------+---------+
//	| version | atyp    | address (A bytes)      | port    |
//	| 1 byte  | 1 byte  |                        | 2 bytes |
//	+---------+---------+------------------------+---------+
//
//	atyp 1 (IPv4):   address = 4 bytes
//	atyp 3 (domain): address = 1 length byte L (1..255) + L bytes of name,
//	                 no control characters, sent unresolved
//	atyp 4 (IPv6):   address = 16 bytes
//	port 0 is invalid.
//
// Reply (exit → client), 3 to 258 bytes:
//
//	 0         1         2          3
//	+---------+---------+----------+------------------+
//	| version | status  | msg len  | message (M bytes)|
//	| 1 byte  | 1 byte  | 1 byte M |  free text       |
//	+---------+---------+----------+------------------+
//
//	status is a SOCKS5 reply code (0..8, see Status); the message says why
//	a connect failed and is empty on success.
//
// Payload bytes follow the header and the reply directly.

// Version is the CONNECT header version this package speaks. A peer that
// speaks another one is refused, so a future layout can be told apart.
const Version byte = 1

// AddrType is the CONNECT request's address type (the SOCKS5 ATYP values).
type AddrType byte

// The address types.
const (
	AddrIPv4   AddrType = 1
	AddrDomain AddrType = 3
	AddrIPv6   AddrType = 4
)

// Size limits of the header.
const (
	MaxDomainLen    = 255                      // a domain fits a length byte
	MaxMsgLen       = 255                      // a reply message fits a length byte
	MaxRequestLen   = 2 + 1 + MaxDomainLen + 2 // longest request (domain)
	MaxReplyLen     = replyHeadLen + MaxMsgLen // longest reply
	minRequestLen   = 2 + 1 + 1 + 2            // shortest request (1-byte domain)
	replyHeadLen    = 3                        // version, status, msg len
	requestHeadLen  = 2                        // version, atyp
	requestPortLen  = 2                        // trailing port
	domainLenPrefix = 1                        // the domain's length byte
	ipv6RequestLen  = 2 + net.IPv6len + 2      // IPv6 request
	ipv4RequestLen  = 2 + net.IPv4len + 2      // IPv4 request
)

// requestHead is the fixed start of a request.
type requestHead []byte

func (h requestHead) Version() byte      { return h[0] }
func (h requestHead) AddrType() AddrType { return AddrType(h[1]) }

// replyHead is the fixed start of a reply.
type replyHead []byte

func (h replyHead) Version() byte  { return h[0] }
func (h replyHead) Status() Status { return Status(h[1]) }
func (h replyHead) MsgLen() int    { return int(h[2]) }

// Request is a decoded CONNECT request: exactly one of IP and Domain is
// set. Keeping a domain as a domain (even one that looks like an IP) makes
// encoding the exact inverse of decoding.
type Request struct {
	IP     netip.Addr // IPv4 (Is4) or IPv6, without zone
	Domain string     // unresolved host name
	Port   uint16
}

// ParseRequest turns "host:port" into a Request. An IP literal host
// becomes an IP request, anything else a domain request; nothing is
// resolved. The port must be numeric and non-zero.
func ParseRequest(hostport string) (Request, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %q: %w", ErrBadAddress, hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Request{}, fmt.Errorf("%w: %q", ErrBadPort, port)
	}
	r := Request{Port: uint16(p)}
	if ip, err := netip.ParseAddr(host); err == nil {
		r.IP = ip
	} else {
		r.Domain = host
	}
	if err := r.validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// AddrType is the address type the request is encoded with.
func (r Request) AddrType() AddrType {
	switch {
	case r.Domain != "" || !r.IP.IsValid():
		return AddrDomain
	case r.IP.Is4():
		return AddrIPv4
	default:
		return AddrIPv6
	}
}

// String returns "host:port" as a dial function expects it.
func (r Request) String() string {
	host := r.Domain
	if r.IP.IsValid() {
		host = r.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(r.Port)))
}

func (r Request) validate() error {
	if r.Port == 0 {
		return fmt.Errorf("%w: 0", ErrBadPort)
	}
	if r.IP.IsValid() {
		if r.Domain != "" {
			return fmt.Errorf("%w: both IP and domain set", ErrBadAddress)
		}
		if r.IP.Zone() != "" {
			return fmt.Errorf("%w: IP zone %q cannot be sent", ErrBadAddress, r.IP.Zone())
		}
		return nil
	}
	return validDomain(r.Domain)
}

// validDomain checks what the exit's resolver and the log lines can safely
// take; the resolver itself judges the rest.
func validDomain[T string | []byte](d T) error {
	if len(d) == 0 || len(d) > MaxDomainLen {
		return fmt.Errorf("%w: length %d", ErrBadDomain, len(d))
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character at %d", ErrBadDomain, i)
		}
	}
	return nil
}

// AppendRequest appends r's wire form to b.
func AppendRequest(b []byte, r Request) ([]byte, error) {
	if err := r.validate(); err != nil {
		return b, err
	}
	at := r.AddrType()
	b = append(b, Version, byte(at))
	switch at {
	case AddrIPv4:
		a := r.IP.As4()
		b = append(b, a[:]...)
	case AddrIPv6:
		a := r.IP.As16()
		b = append(b, a[:]...)
	default:
		b = append(b, byte(len(r.Domain)))
		b = append(b, r.Domain...)
	}
	return binary.BigEndian.AppendUint16(b, r.Port), nil
}

// requestLen returns how long the request starting with b is, from as few
// bytes as needed: 0 with ErrTruncated if b is too short to tell.
func requestLen(b []byte) (int, error) {
	if len(b) < requestHeadLen {
		return 0, ErrTruncated
	}
	h := requestHead(b)
	if h.Version() != Version {
		return 0, fmt.Errorf("%w: %d", ErrVersion, h.Version())
	}
	switch h.AddrType() {
	case AddrIPv4:
		return ipv4RequestLen, nil
	case AddrIPv6:
		return ipv6RequestLen, nil
	case AddrDomain:
		if len(b) < requestHeadLen+domainLenPrefix {
			return 0, ErrTruncated
		}
		l := int(b[requestHeadLen])
		if l == 0 {
			return 0, fmt.Errorf("%w: length 0", ErrBadDomain)
		}
		return requestHeadLen + domainLenPrefix + l + requestPortLen, nil
	}
	return 0, fmt.Errorf("%w: %d", ErrAddrType, h.AddrType())
}

// DecodeRequest decodes the request at the start of b and returns it with
// the number of bytes it used. Every length is checked before anything is
// allocated; only a domain name is copied.
func DecodeRequest(b []byte) (Request, int, error) {
	n, err := requestLen(b)
	if err != nil {
		return Request{}, 0, err
	}
	if len(b) < n {
		return Request{}, 0, ErrTruncated
	}
	var r Request
	addr := b[requestHeadLen : n-requestPortLen]
	switch requestHead(b).AddrType() {
	case AddrIPv4:
		r.IP = netip.AddrFrom4([4]byte(addr))
	case AddrIPv6:
		r.IP = netip.AddrFrom16([16]byte(addr))
	default:
		name := addr[domainLenPrefix:]
		if err := validDomain(name); err != nil {
			return Request{}, 0, err
		}
		r.Domain = string(name)
	}
	r.Port = binary.BigEndian.Uint16(b[n-requestPortLen : n])
	if r.Port == 0 {
		return Request{}, 0, fmt.Errorf("%w: 0", ErrBadPort)
	}
	return r, n, nil
}

// ReadRequest reads exactly one request from rd, never a byte beyond it,
// so payload that follows stays in rd.
func ReadRequest(rd io.Reader) (Request, error) {
	var buf [MaxRequestLen]byte
	// Version and type, plus the domain length byte, which never reads
	// past the request: every request is at least minRequestLen long.
	have := requestHeadLen + domainLenPrefix
	if _, err := io.ReadFull(rd, buf[:have]); err != nil {
		return Request{}, fmt.Errorf("mux: read request: %w", err)
	}
	n, err := requestLen(buf[:have])
	if err != nil {
		return Request{}, err
	}
	if _, err := io.ReadFull(rd, buf[have:n]); err != nil {
		return Request{}, fmt.Errorf("mux: read request: %w", err)
	}
	r, _, err := DecodeRequest(buf[:n])
	return r, err
}

// AppendReply appends a reply to b. A message longer than MaxMsgLen is
// cut; an OK reply carries no message.
func AppendReply(b []byte, st Status, msg string) []byte {
	if st == StatusOK {
		msg = ""
	}
	if len(msg) > MaxMsgLen {
		msg = msg[:MaxMsgLen]
	}
	b = append(b, Version, byte(st), byte(len(msg)))
	return append(b, msg...)
}

// DecodeReply decodes the reply at the start of b and returns its status,
// message and length.
func DecodeReply(b []byte) (Status, string, int, error) {
	if len(b) < replyHeadLen {
		return 0, "", 0, ErrTruncated
	}
	h := replyHead(b)
	if err := checkReplyHead(h); err != nil {
		return 0, "", 0, err
	}
	n := replyHeadLen + h.MsgLen()
	if len(b) < n {
		return 0, "", 0, ErrTruncated
	}
	return h.Status(), string(b[replyHeadLen:n]), n, nil
}

func checkReplyHead(h replyHead) error {
	if h.Version() != Version {
		return fmt.Errorf("%w: %d", ErrVersion, h.Version())
	}
	if h.Status() > maxStatus {
		return fmt.Errorf("%w: %d", ErrBadStatus, h.Status())
	}
	return nil
}

// ReadReply reads exactly one reply from rd.
func ReadReply(rd io.Reader) (Status, string, error) {
	var buf [MaxReplyLen]byte
	if _, err := io.ReadFull(rd, buf[:replyHeadLen]); err != nil {
		return 0, "", fmt.Errorf("mux: read reply: %w", err)
	}
	h := replyHead(buf[:replyHeadLen])
	if err := checkReplyHead(h); err != nil {
		return 0, "", err
	}
	n := replyHeadLen + h.MsgLen()
	if _, err := io.ReadFull(rd, buf[replyHeadLen:n]); err != nil {
		return 0, "", fmt.Errorf("mux: read reply: %w", err)
	}
	return h.Status(), string(buf[replyHeadLen:n]), nil
}
