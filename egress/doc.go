// Package egress is the exit node's dial policy.
//
// A braid exit connects to whatever destination a client names. Without a
// policy that turns the exit into an open door into the exit host's own
// network: its loopback services, the private LAN behind it, and the cloud
// metadata endpoint that hands out credentials (server-side request forgery).
// egress refuses those destinations.
//
// The check runs on the address that is really connected: the Dialer installs
// a net.Dialer ControlContext hook, which sees every socket address after name
// resolution and immediately before connect(2). A host name that resolves (or
// re-resolves, DNS rebinding) to 127.0.0.1 is therefore refused just like the
// literal, and when a name has several addresses each attempt is checked on
// its own, so happy-eyeballs fallback can never reach a denied one.
//
// Before resolution, host strings that are numeric IPv4 in the legacy
// inet_aton forms ("2130706433", "0x7f000001", "0177.0.0.1", "127.1") are
// parsed as the address they denote (see ParseNumericHost): the policy is
// applied to that address and, if allowed, the canonical form is dialed. A
// pure-Go resolver would otherwise send them to DNS, and a libc resolver would
// silently turn them into addresses.
//
// # Default policy
//
// DefaultDenied lists every range refused by default, with the reason each is
// there. In short: loopback, unspecified, RFC 1918 private, CGNAT, link-local,
// cloud metadata addresses, IPv6 ULA and site-local, multicast, broadcast and
// reserved space, benchmarking, documentation ranges (closed: no legitimate
// destination lives there, and labs sometimes use them internally), the IPv6
// discard prefix, deprecated IPv4-compatible and SIIT forms, Teredo
// (2001::/32, closed as a whole: obsolete, and the addresses it embeds are
// obfuscated NAT mappings) and the local-use NAT64 prefix 64:ff9b:1::/48
// (its embedding layout is the operator's choice, so it cannot be checked).
//
// IPv6 forms that embed an IPv4 address are checked twice, once as themselves
// and once as the IPv4 address they carry: IPv4-mapped ::ffff:0:0/96, the
// well-known NAT64 prefix 64:ff9b::/96 (so a DNS64/NAT64 exit still reaches
// public IPv4 hosts) and 6to4 2002::/16. ISATAP interface identifiers are not
// decoded; they only matter on a host with an ISATAP tunnel.
//
// # Allow entries
//
// Policy.Allow opens exceptions and wins over every deny range, the defaults
// and Policy.Deny alike. Allow entries are matched against each address a
// destination denotes: to reach 2002:7f00:1::1 (6to4 for 127.0.0.1) you must
// allow 127.0.0.1, allowing 2002::/16 is not enough. IPv4-mapped IPv6
// addresses are matched as their IPv4 address, so allowing 127.0.0.0/8 also
// opens ::ffff:127.0.0.1.
//
// Name resolution itself (the Resolver's connections to its DNS servers) is
// not subject to the policy: the system resolver commonly lives on loopback.
package egress

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) and carry the "egress: " prefix.
var (
	// ErrDenied is matched (errors.Is) by every *DeniedError: the policy
	// refused the destination.
	ErrDenied = errors.New("destination not allowed by exit policy")

	// ErrInvalidAddress means the dial address is not host:port with a
	// non-empty host and a numeric port 1-65535, or the host ends in a number
	// but is not a valid IPv4 address in any accepted notation.
	ErrInvalidAddress = errors.New("invalid destination address")

	// ErrUnsupportedNetwork means the network is not tcp, tcp4, tcp6, udp,
	// udp4 or udp6. Unix sockets in particular are refused: they would reach
	// local services directly.
	ErrUnsupportedNetwork = errors.New("unsupported network")

	// ErrInvalidPrefix means a CIDR or IP entry given to ParsePrefixes or
	// found in a Policy is malformed or not in canonical form.
	ErrInvalidPrefix = errors.New("invalid prefix")

	// ErrInvalidConfig means Config.Validate or Policy.Validate rejected
	// the configuration.
	ErrInvalidConfig = errors.New("invalid config")
)
