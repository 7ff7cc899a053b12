package egress

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// DefaultTimeout bounds one dial, name resolution included, when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Dialer.
type Config struct {
	// Policy decides which destinations may be dialed. The zero value
	// refuses DefaultDenied and allows everything else.
	Policy Policy

	// Timeout bounds one DialContext call, name resolution and all
	// connection attempts included. Zero means DefaultTimeout.
	Timeout time.Duration

	// Resolver resolves host names; nil means net.DefaultResolver. Its own
	// connections to DNS servers are not subject to Policy, because the
	// system resolver commonly listens on loopback.
	Resolver *net.Resolver

	// Logger receives a debug record for each refused destination; nil
	// discards.
	Logger *slog.Logger
}

// DefaultConfig returns the default deny policy with DefaultTimeout.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout}
}

// Validate checks the policy (see Policy.Validate) and the timeout.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("egress: timeout %v is negative: %w", c.Timeout, ErrInvalidConfig)
	}
	return c.Policy.Validate()
}

// Dialer dials destinations on behalf of the exit, refusing those its Policy
// denies. The zero Dialer is ready to use with the default policy and
// DefaultTimeout; New copies and validates a Config. A Dialer is safe for
// concurrent use and holds no resources, so it has no Close.
type Dialer struct {
	policy   Policy
	timeout  time.Duration
	resolver *net.Resolver
	log      *slog.Logger
}

// New returns a Dialer for cfg after validating it. The Policy slices are
// copied, so later changes to cfg do not affect the Dialer.
func New(cfg Config) (*Dialer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dialer{
		policy: Policy{
			Allow: slices.Clone(cfg.Policy.Allow),
			Deny:  slices.Clone(cfg.Policy.Deny),
		},
		timeout:  cfg.Timeout,
		resolver: cfg.Resolver,
		log:      cfg.Logger,
	}, nil
}

// Policy returns a copy of the Dialer's policy.
func (d *Dialer) Policy() Policy {
	return Policy{Allow: slices.Clone(d.policy.Allow), Deny: slices.Clone(d.policy.Deny)}
}

func (d *Dialer) logger() *slog.Logger {
	if d.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.log
}

func (d *Dialer) timeoutOrDefault() time.Duration {
	if d.timeout == 0 {
		return DefaultTimeout
	}
	return d.timeout
}

// DialContext connects to address ("host:port") on network (tcp, tcp4,
// tcp6, udp, udp4, udp6) unless the policy refuses it.
//
// A numeric host (see ParseNumericHost) is checked before anything is
// dialed and, if allowed, dialed in canonical form; a refusal is returned as
// a bare *DeniedError. A name is resolved and each resolved address is
// checked by the socket Control hook immediately before connect, so a
// refusal arrives as a *net.OpError wrapping the *DeniedError: use
// errors.As, or errors.Is with ErrDenied. Other connection failures are
// returned as the net package reports them (a *net.OpError), so callers
// keep its timeout and errno detail. When a name has several addresses and
// only some are denied, the others are still tried; if they all fail, the
// error is whatever the net package reports for the attempts.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("egress: network %q: %w", network, ErrUnsupportedNetwork)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w: %w", ErrInvalidAddress, err)
	}
	if host == "" {
		// net.Dial would take an empty host to mean the local system.
		return nil, fmt.Errorf("egress: address %q has an empty host: %w", address, ErrInvalidAddress)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("egress: address %q: port must be 1-65535: %w", address, ErrInvalidAddress)
	}
	ip, numeric, err := ParseNumericHost(host)
	if err != nil {
		return nil, err
	}
	target := net.JoinHostPort(host, strconv.FormatUint(port, 10))
	if numeric {
		if err := d.policy.Check(ip); err != nil {
			return nil, d.refused(host, err)
		}
		target = netip.AddrPortFrom(ip, uint16(port)).String()
	}
	nd := &net.Dialer{
		Timeout:        d.timeoutOrDefault(),
		Resolver:       d.resolver,
		ControlContext: d.control(host),
	}
	return nd.DialContext(ctx, network, target)
}

// control returns the hook that judges each socket address just before
// connect. This is the authoritative check: it sees the resolved address
// that is really connected, whatever the resolver answered.
func (d *Dialer) control(host string) func(context.Context, string, string, syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			// Fail closed on anything we cannot read.
			return d.refused(host, &DeniedError{Reason: "unparseable socket address " + strconv.Quote(address)})
		}
		if err := d.policy.Check(ap.Addr()); err != nil {
			return d.refused(host, err)
		}
		return nil
	}
}

// refused fills in the requested host on a Check error and logs it.
func (d *Dialer) refused(host string, err error) error {
	if de, ok := asDenied(err); ok {
		de.Host = host
	}
	d.logger().Debug("egress: destination refused", "host", host, "err", err)
	return err
}
