package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// deniedRange is one default deny entry with the reason it is there, so a
// refusal can say why.
type deniedRange struct {
	prefix netip.Prefix
	reason string
}

// defaultDenied is the documented default deny list. More specific entries
// come first so a refusal names the most telling reason (for example "cloud
// metadata" rather than "link-local"); the order has no other effect.
var defaultDenied = []deniedRange{
	// Cloud metadata endpoints: the main SSRF prize. All but the Azure one
	// are also inside a wider range below; they are listed for the reason.
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata (AWS, GCP, Azure, DigitalOcean, ...)"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata (Alibaba Cloud)"},
	{netip.MustParsePrefix("192.0.0.192/32"), "cloud metadata (Oracle Cloud)"},
	{netip.MustParsePrefix("168.63.129.16/32"), "cloud platform endpoint (Azure WireServer)"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata (AWS IPv6)"},

	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified / this network (RFC 1122)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space / CGNAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation TEST-NET-1 (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "deprecated 6to4 relay anycast (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation TEST-NET-2 (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation TEST-NET-3 (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},

	// IPv6. ::ffff:0:0/96 (IPv4-mapped) is absent on purpose: Check unmaps
	// those and judges the IPv4 address.
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "deprecated IPv4-compatible (RFC 4291)"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated / SIIT (RFC 2765)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (RFC 4380)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking (RFC 5180)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SIDs (RFC 9602)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "deprecated site-local (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// reasonConfiguredDeny is the DeniedError.Reason for a Policy.Deny match.
const reasonConfiguredDeny = "configured deny"

// Embedding prefixes whose IPv4 payload Check also judges.
var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: IPv4 in the last 32 bits
	sixToFour      = netip.MustParsePrefix("2002::/16")    // RFC 3056: IPv4 in bits 16-47
)

// DefaultDenied returns the ranges refused by default, most specific first.
// The returned slice is a fresh copy. See the package documentation for the
// reasoning; DeniedError.Reason names the range that matched.
func DefaultDenied() []netip.Prefix {
	out := make([]netip.Prefix, len(defaultDenied))
	for i, r := range defaultDenied {
		out[i] = r.prefix
	}
	return out
}

// Policy decides which destination addresses the exit may connect to. The
// zero value refuses DefaultDenied and allows everything else.
type Policy struct {
	// Allow lists exceptions to the deny ranges; an address (or the IPv4
	// address it embeds) inside an Allow entry is never refused for that
	// address. Entries must be canonical (see ParsePrefixes).
	Allow []netip.Prefix

	// Deny lists ranges refused in addition to DefaultDenied, for example a
	// public range of the operator's own. Allow wins over Deny too.
	Deny []netip.Prefix
}

// Check reports whether addr may be dialed: nil, or a *DeniedError naming the
// range that refused it. IPv6 zones are ignored, IPv4-mapped addresses are
// judged as IPv4, and NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are
// judged both as themselves and as the IPv4 address they embed. The invalid
// (zero) Addr is refused.
func (p Policy) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &DeniedError{Addr: addr, Reason: "invalid address"}
	}
	// netip.Prefix.Contains never matches a zoned address, so a zone left on
	// would let fe80::1%eth0 slip past fe80::/10.
	a := addr.WithZone("").Unmap()
	if e := p.checkOne(addr, a, netip.Addr{}); e != nil {
		return e
	}
	if v4, ok := embeddedIPv4(a); ok {
		if e := p.checkOne(addr, v4, v4); e != nil {
			return e
		}
	}
	return nil
}

// checkOne judges one view of a destination: the address itself or the IPv4
// address it embeds.
func (p Policy) checkOne(orig, view, embedded netip.Addr) *DeniedError {
	for _, pr := range p.Allow {
		if pr.Contains(view) {
			return nil
		}
	}
	for _, r := range defaultDenied {
		if r.prefix.Contains(view) {
			return &DeniedError{Addr: orig, Embedded: embedded, Range: r.prefix, Reason: r.reason}
		}
	}
	for _, pr := range p.Deny {
		if pr.Contains(view) {
			return &DeniedError{Addr: orig, Embedded: embedded, Range: pr, Reason: reasonConfiguredDeny}
		}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address carried by a NAT64 well-known-prefix
// or 6to4 address. a must be unzoned and unmapped.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64WellKnown.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// Validate reports malformed entries and contradictions: every entry must be
// valid and canonical (host bits clear, IPv4 written as IPv4), and a Deny
// entry lying wholly inside an Allow entry could never apply.
func (p Policy) Validate() error {
	for i, pr := range p.Allow {
		if err := checkCanonical(pr); err != nil {
			return fmt.Errorf("egress: allow entry %d: %w", i, err)
		}
	}
	for i, pr := range p.Deny {
		if err := checkCanonical(pr); err != nil {
			return fmt.Errorf("egress: deny entry %d: %w", i, err)
		}
		for _, a := range p.Allow {
			if covers(a, pr) {
				return fmt.Errorf("egress: deny entry %s is inside allow entry %s and would never apply: %w", pr, a, ErrInvalidConfig)
			}
		}
	}
	return nil
}

// covers reports whether every address of inner is inside outer.
func covers(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// checkCanonical rejects prefixes Check could not match as the operator meant.
func checkCanonical(pr netip.Prefix) error {
	switch {
	case !pr.IsValid():
		return fmt.Errorf("%q: %w", pr.String(), ErrInvalidPrefix)
	case pr.Masked() != pr:
		return fmt.Errorf("%s has host bits set (did you mean %s?): %w", pr, pr.Masked(), ErrInvalidPrefix)
	case pr.Addr().Is4In6():
		// Check unmaps addresses, so a mapped prefix would never match.
		return fmt.Errorf("%s is IPv4-mapped; write it as IPv4: %w", pr, ErrInvalidPrefix)
	}
	return nil
}

// ParsePrefixes parses CIDR prefixes or bare IP addresses (a bare address
// becomes a /32 or /128), as given on the command line with --allow. Spaces
// around an entry are ignored. IPv4-mapped entries of /96 or longer
// (::ffff:10.0.0.0/104) are rewritten as IPv4 (10.0.0.0/8), since Check judges
// mapped addresses as IPv4. Entries with host bits set ("10.1.2.3/8"), IPv6
// zones, or legacy numeric IPv4 forms are rejected with an error naming the
// entry, so a typo cannot silently widen an exception.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, raw := range cidrs {
		pr, err := parsePrefix(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("egress: entry %d %q: %w", i, raw, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

// parsePrefix parses one ParsePrefixes entry.
func parsePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty: %w", ErrInvalidPrefix)
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("IPv6 zones are not supported: %w", ErrInvalidPrefix)
	}
	var pr netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %w", ErrInvalidPrefix, err)
		}
		pr = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %w", ErrInvalidPrefix, err)
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	if pr.Addr().Is4In6() && pr.Bits() >= 96 {
		pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96)
	}
	if err := checkCanonical(pr); err != nil {
		return netip.Prefix{}, err
	}
	return pr, nil
}

// DeniedError is returned when the policy refuses a destination. Through
// DialContext it may arrive wrapped in a *net.OpError; use errors.As.
type DeniedError struct {
	// Host is the host as the client gave it (name or literal); empty when
	// the error comes from Policy.Check directly.
	Host string
	// Addr is the destination address that was refused; the zero Addr when
	// the address itself was invalid.
	Addr netip.Addr
	// Embedded is the IPv4 address embedded in Addr (NAT64, 6to4) when that,
	// rather than Addr itself, fell in the denied range; otherwise zero.
	Embedded netip.Addr
	// Range is the deny range that matched; zero for an invalid address.
	Range netip.Prefix
	// Reason names the range, e.g. "loopback" or "configured deny".
	Reason string
}

// Error describes what was refused and why.
func (e *DeniedError) Error() string {
	var b strings.Builder
	b.WriteString("egress: destination ")
	switch {
	case e.Host != "" && (!e.Addr.IsValid() || e.Host != e.Addr.String()):
		fmt.Fprintf(&b, "%q", e.Host)
		if e.Addr.IsValid() {
			fmt.Fprintf(&b, " (%s)", e.Addr)
		}
	case e.Addr.IsValid():
		b.WriteString(e.Addr.String())
	default:
		b.WriteString("address")
	}
	if e.Embedded.IsValid() {
		fmt.Fprintf(&b, " embeds %s", e.Embedded)
	}
	b.WriteString(" refused: ")
	b.WriteString(e.Reason)
	if e.Range.IsValid() {
		fmt.Fprintf(&b, " (%s)", e.Range)
	}
	return b.String()
}

// NotAllowed reports true: mux maps any error with this method to the
// "not allowed by policy" reply without importing egress.
func (e *DeniedError) NotAllowed() bool { return true }

// Is makes errors.Is(err, ErrDenied) true for every DeniedError.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// asDenied is errors.As for *DeniedError.
func asDenied(err error) (*DeniedError, bool) {
	var de *DeniedError
	ok := errors.As(err, &de)
	return de, ok
}
