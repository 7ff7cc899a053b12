package egress

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// ParseNumericHost reports whether host denotes an IP address rather than a
// name, and which one. It accepts every IP literal netip.ParseAddr accepts
// (IPv6 with or without zone) and IPv4 in the legacy inet_aton notations:
// one to four dot-separated parts, each decimal, octal with a leading 0 or
// hexadecimal with 0x, the last part filling the remaining bytes
// ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1"), with an
// optional trailing dot.
//
// Following the WHATWG URL host parser, a host whose last label is numeric
// (all decimal digits, or 0x followed by hex digits) is an IPv4 address or
// nothing: if it does not parse ("256.1.1.1", "1.2.3.4.5", "foo.1", "08"),
// numeric is true and err wraps ErrInvalidAddress. No real host name ends in
// a numeric label, and sending such strings to a resolver is exactly what
// lets some resolvers reinterpret them. Otherwise numeric is false and host
// is a name to resolve.
func ParseNumericHost(host string) (addr netip.Addr, numeric bool, err error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true, nil
	}
	if !endsInNumber(host) {
		return netip.Addr{}, false, nil
	}
	a, ok := parseLegacyIPv4(host)
	if !ok {
		return netip.Addr{}, true, fmt.Errorf("egress: host %q ends in a number but is no IPv4 address: %w", host, ErrInvalidAddress)
	}
	return a, true, nil
}

// endsInNumber reports whether the last dot-separated label of host (after
// dropping one trailing dot) is numeric, which makes host an IPv4 candidate.
func endsInNumber(host string) bool {
	s := strings.TrimSuffix(host, ".")
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	// Judge the syntax, not the value: "08" and "0x100000000" mark the host
	// as numeric (and invalid) instead of handing them to a resolver.
	digits, hex := last, false
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		digits, hex = last[2:], true
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		isDec := c >= '0' && c <= '9'
		isHex := (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		if !isDec && !(hex && isHex) {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 parses the inet_aton notations described at
// ParseNumericHost. It never allocates and stops at the fifth part.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	s := strings.TrimSuffix(host, ".")
	var parts [4]uint64
	n := 0
	for {
		part, rest, more := strings.Cut(s, ".")
		if n == len(parts) {
			return netip.Addr{}, false
		}
		v, ok := parseIPv4Part(part)
		if !ok {
			return netip.Addr{}, false
		}
		parts[n] = v
		n++
		if !more {
			break
		}
		s = rest
	}
	var v uint64
	for i := 0; i < n-1; i++ {
		if parts[i] > 0xff {
			return netip.Addr{}, false
		}
		v |= parts[i] << (8 * (3 - i))
	}
	// The last part fills the bytes the earlier parts left: 32, 24, 16 or
	// 8 bits for n = 1..4.
	if parts[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	v |= parts[n-1]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Part parses one part: decimal, octal with a leading 0, or hex with
// 0x/0X ("0x" alone is 0, as in the WHATWG parser). Values above 2^32-1 fail;
// the check runs per digit so any number of digits is safe.
func parseIPv4Part(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	radix := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, radix = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, radix = s[1:], 8
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		var d uint64
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= radix {
			return 0, false
		}
		v = v*radix + d
		if v > math.MaxUint32 {
			return 0, false
		}
	}
	return v, true
}
