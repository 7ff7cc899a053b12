package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Sentinel errors of package netlab.
var (
	// ErrUnsupported means this machine cannot create network namespaces
	// (not root, no iproute2, or netns creation refused). Tests skip on it.
	ErrUnsupported = errors.New("netlab: network namespaces unavailable")
	// ErrClosed is returned by operations on a Lab after Close.
	ErrClosed = errors.New("netlab: lab closed")
	// ErrNoNamespace is returned for a namespace that is not the lab's.
	ErrNoNamespace = errors.New("netlab: unknown namespace")
	// ErrConfig wraps every Config.Validate failure.
	ErrConfig = errors.New("netlab: invalid config")
)

// Namespace roles accepted wherever a namespace is named; Lab.NSName maps a
// role to the real namespace name.
const (
	Client = "client"
	Exit   = "exit"
)

// MaxLinks is the most links a Lab can have: link i uses 10.200.i.0/24 and
// 10.200.255.0/24 is reserved for TargetIP.
const MaxLinks = 32

// TargetIP is the address of the exit namespace's loopback that plays the
// "internet" target: servers listening on it (or on 0.0.0.0) in the exit
// namespace are reachable from the client namespace over every link.
var TargetIP = netip.MustParseAddr("10.200.255.1")

// TargetNet is the /24 holding TargetIP, routed over every link; braid's
// exit needs it in its --allow list.
var TargetNet = netip.MustParsePrefix("10.200.255.0/24")

// LinkSpec describes one link between the namespaces.
type LinkSpec struct {
	// RateMbit is the tbf rate in Mbit/s applied to both directions; 0 leaves
	// the link unshaped (veth speed).
	RateMbit float64
	// DelayMs is a one-way delay added in each direction for connections made
	// through Link.Endpoint (by a userspace relay; see the package doc). 0
	// means no relay.
	DelayMs int
}

// Config configures a Lab.
type Config struct {
	// Links are the links to create, link i between c<i> and e<i>. At least
	// one, at most MaxLinks.
	Links []LinkSpec
	// Prefix starts every namespace name; the stale sweep only touches
	// namespaces with this prefix. Lowercase letters and digits, 1-8 chars.
	Prefix string
	// QueueMs bounds the tbf queue to QueueMs of data at the link rate (plus
	// the burst), keeping the shaper from adding bufferbloat. 1-1000.
	QueueMs int
	// BurstBytes overrides the tbf burst; 0 sizes it from the rate (4 ms of
	// data, at least 16 KiB).
	BurstBytes int
	// Logger receives setup and teardown messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a config for two 50 Mbit/s links without delay.
func DefaultConfig() Config {
	return Config{
		Links:   []LinkSpec{{RateMbit: 50}, {RateMbit: 50}},
		Prefix:  "brd",
		QueueMs: 20,
	}
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Validate checks every field and their combinations.
func (c Config) Validate() error {
	if len(c.Links) == 0 || len(c.Links) > MaxLinks {
		return fmt.Errorf("%w: need 1..%d links, got %d", ErrConfig, MaxLinks, len(c.Links))
	}
	for i, l := range c.Links {
		if l.RateMbit < 0 || l.RateMbit > 100000 {
			return fmt.Errorf("%w: link %d: rate %v Mbit/s out of range 0..100000", ErrConfig, i, l.RateMbit)
		}
		if l.RateMbit > 0 && l.RateMbit < 0.1 {
			return fmt.Errorf("%w: link %d: rate %v Mbit/s below 0.1", ErrConfig, i, l.RateMbit)
		}
		if l.DelayMs < 0 || l.DelayMs > 10000 {
			return fmt.Errorf("%w: link %d: delay %d ms out of range 0..10000", ErrConfig, i, l.DelayMs)
		}
	}
	if !prefixRE.MatchString(c.Prefix) {
		return fmt.Errorf("%w: prefix %q must match %s", ErrConfig, c.Prefix, prefixRE)
	}
	if c.QueueMs < 1 || c.QueueMs > 1000 {
		return fmt.Errorf("%w: queue %d ms out of range 1..1000", ErrConfig, c.QueueMs)
	}
	if c.BurstBytes < 0 || (c.BurstBytes > 0 && c.BurstBytes < 1600) {
		return fmt.Errorf("%w: burst %d bytes must be 0 (auto) or >= 1600", ErrConfig, c.BurstBytes)
	}
	return nil
}

// tbfParams returns burst and limit in bytes for a rate, per the Config.
func (c Config) tbfParams(rateMbit float64) (burst, limit int) {
	bytesPerSec := rateMbit * 1e6 / 8
	burst = c.BurstBytes
	if burst == 0 {
		burst = max(int(bytesPerSec*0.004), 16*1024)
	}
	limit = int(bytesPerSec*float64(c.QueueMs)/1000) + burst
	return burst, limit
}

// Lab is one client namespace and one exit namespace joined by shaped veth
// links. All methods are safe for concurrent use.
type Lab struct {
	cfg    Config
	log    *slog.Logger
	names  map[string]string // role -> namespace name
	links  []*Link
	nsFD   map[string]netns.NsHandle
	nlMu   sync.Mutex
	nl     map[string]*netlink.Handle
	mu     sync.Mutex
	procs  map[*Proc]struct{}
	relays []*relay
	closed atomic.Bool
	once   sync.Once
	err    error
}

var (
	labSeq    atomic.Int64
	sweepOnce sync.Once
)

// nsNameRE matches the lab's namespace names; group 1 is the prefix, group 2
// the pid of the process that made it.
var nsNameRE = regexp.MustCompile(`^([a-z][a-z0-9]{0,7})-([0-9]{1,10})-[0-9]{1,10}-(client|exit)$`)

// parseNSName returns prefix and owning pid of a lab namespace name, ok false
// for names that are not a lab's.
func parseNSName(name string) (prefix string, pid int, ok bool) {
	m := nsNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", 0, false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	return m[1], pid, true
}

// parseNetnsList returns the namespace names in `ip netns list` output
// ("name" or "name (id: N)" per line).
func parseNetnsList(out []byte) []string {
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		names = append(names, f[0])
	}
	return names
}

// Check reports whether this machine can run a Lab: ErrUnsupported (wrapped)
// when it cannot make namespaces, another error when a needed tool is
// missing.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (euid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: iproute2 `ip` not found: %w", ErrUnsupported, err)
	}
	for _, tool := range []string{"tc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netlab: %s not found (apt-get install iproute2 nftables): %w", tool, err)
		}
	}
	name := fmt.Sprintf("brd-%d-%d-client", os.Getpid(), labSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns add: %s: %w", ErrUnsupported, bytes.TrimSpace(out), err)
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: ip netns del %s: %s: %w", name, bytes.TrimSpace(out), err)
	}
	return nil
}

// NewForTest builds a Lab for a test with links and the default settings,
// skips the test where namespaces are unavailable (or under -short), fails
// it on any other setup error, and closes the lab in t.Cleanup.
func NewForTest(tb testing.TB, links ...LinkSpec) *Lab {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Links = links
	return NewForTestConfig(tb, cfg)
}

// NewForTestConfig is NewForTest with a full Config.
func NewForTestConfig(tb testing.TB, cfg Config) *Lab {
	tb.Helper()
	if testing.Short() {
		tb.Skip("netlab: namespace test skipped in -short mode")
	}
	if err := Check(); err != nil {
		if errors.Is(err, ErrUnsupported) {
			tb.Skipf("netlab: cannot create network namespaces on this machine, skipping: %v", err)
		}
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lab, err := New(ctx, cfg)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			tb.Skipf("netlab: cannot create network namespaces on this machine, skipping: %v", err)
		}
		tb.Fatalf("netlab: %v", err)
	}
	tb.Cleanup(func() {
		if err := lab.Close(); err != nil {
			tb.Errorf("netlab: close: %v", err)
		}
	})
	return lab
}

// New creates the namespaces and links of cfg. On error everything created
// so far is removed.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not root", ErrUnsupported)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sweepOnce.Do(func() { sweepStale(log, cfg.Prefix) })

	n := labSeq.Add(1)
	l := &Lab{
		cfg:   cfg,
		log:   log,
		names: map[string]string{},
		nsFD:  map[string]netns.NsHandle{},
		nl:    map[string]*netlink.Handle{},
		procs: map[*Proc]struct{}{},
	}
	for _, role := range []string{Client, Exit} {
		l.names[role] = fmt.Sprintf("%s-%d-%d-%s", cfg.Prefix, os.Getpid(), n, role)
	}
	if err := l.setup(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	log.Info("netlab: lab ready", "client", l.names[Client], "exit", l.names[Exit], "links", len(l.links))
	return l, nil
}

func (l *Lab) setup(ctx context.Context) error {
	for _, role := range []string{Client, Exit} {
		name := l.names[role]
		if err := l.ip(ctx, "netns", "add", name); err != nil {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		h, err := netns.GetFromName(name)
		if err != nil {
			return fmt.Errorf("netlab: open namespace %s: %w", name, err)
		}
		l.nsFD[role] = h
		if err := l.ip(ctx, "-n", name, "link", "set", "lo", "up"); err != nil {
			return err
		}
		// No cached ssthresh/RTT between runs: each measurement starts fresh.
		if err := l.sysctl(role, "net/ipv4/tcp_no_metrics_save", "1"); err != nil {
			return err
		}
		if err := l.nft(ctx, role, nftTable, "-f", "-"); err != nil {
			return err
		}
	}
	cns, ens := l.names[Client], l.names[Exit]
	if err := l.ip(ctx, "-n", ens, "addr", "add", TargetIP.String()+"/32", "dev", "lo"); err != nil {
		return err
	}
	for i, spec := range l.cfg.Links {
		k := &Link{
			lab:       l,
			Index:     i,
			Spec:      spec,
			ClientDev: fmt.Sprintf("c%d", i),
			ExitDev:   fmt.Sprintf("e%d", i),
			ClientIP:  netip.AddrFrom4([4]byte{10, 200, byte(i), 1}),
			ExitIP:    netip.AddrFrom4([4]byte{10, 200, byte(i), 2}),
		}
		l.links = append(l.links, k)
		steps := [][]string{
			{"link", "add", k.ClientDev, "netns", cns, "type", "veth", "peer", "name", k.ExitDev, "netns", ens},
			{"-n", cns, "addr", "add", k.ClientIP.String() + "/24", "dev", k.ClientDev},
			{"-n", ens, "addr", "add", k.ExitIP.String() + "/24", "dev", k.ExitDev},
			{"-n", cns, "link", "set", k.ClientDev, "up"},
			{"-n", ens, "link", "set", k.ExitDev, "up"},
			{"-n", cns, "rule", "add", "from", k.ClientIP.String(), "lookup", strconv.Itoa(k.table()), "pref", strconv.Itoa(1000 + i)},
		}
		for _, s := range steps {
			if err := l.ip(ctx, s...); err != nil {
				return err
			}
		}
		if err := k.routes(ctx); err != nil {
			return err
		}
		if spec.RateMbit > 0 {
			burst, limit := l.cfg.tbfParams(spec.RateMbit)
			for _, end := range [][2]string{{cns, k.ClientDev}, {ens, k.ExitDev}} {
				args := []string{"-n", end[0], "qdisc", "replace", "dev", end[1], "root", "tbf",
					"rate", fmt.Sprintf("%dkbit", int64(spec.RateMbit*1000)),
					"burst", strconv.Itoa(burst), "limit", strconv.Itoa(limit)}
				if err := l.run(ctx, "tc", args...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nftTable is loaded into both namespaces: packets arriving over a device in
// set bh are dropped (see Link.Blackhole).
const nftTable = `table inet braidlab {
	set bh { type ifname; }
	chain input { type filter hook input priority -300; policy accept; iifname @bh drop; }
}
`

// NSName returns the real namespace name of role Client or Exit ("" for
// any other role).
func (l *Lab) NSName(role string) string { return l.names[role] }

// Links returns the lab's links in order.
func (l *Lab) Links() []*Link { return append([]*Link(nil), l.links...) }

// Link returns link i; it panics if i is out of range, like a slice.
func (l *Lab) Link(i int) *Link { return l.links[i] }

// Config returns the config the lab was built with.
func (l *Lab) Config() Config { return l.cfg }

func (l *Lab) nsHandle(role string) (netns.NsHandle, error) {
	if l.closed.Load() {
		return -1, ErrClosed
	}
	h, ok := l.nsFD[role]
	if !ok {
		return -1, fmt.Errorf("%w: %q (want %q or %q)", ErrNoNamespace, role, Client, Exit)
	}
	return h, nil
}

// InNS runs f on a fresh OS thread switched into namespace role and returns
// its error. Sockets created by f (listeners, dialled connections) stay in
// that namespace and may be used from any goroutine afterwards; goroutines
// that f starts do NOT run in the namespace. The thread is discarded when f
// returns, so a namespace switch never leaks into other goroutines.
func (l *Lab) InNS(role string, f func() error) error {
	h, err := l.nsHandle(role)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread is in another namespace now, and a
		// goroutine that exits locked takes its thread with it.
		if err := unix.Setns(int(h), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netlab: setns %s: %w", l.names[role], err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Listen creates a listener in namespace role. lc may be nil; set
// lc.SetMultipathTCP(true) for an MPTCP listener.
func (l *Lab) Listen(ctx context.Context, role string, lc *net.ListenConfig, network, addr string) (net.Listener, error) {
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	var ln net.Listener
	err := l.InNS(role, func() error {
		var err error
		ln, err = lc.Listen(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: listen %s %s in %s: %w", network, addr, role, err)
	}
	return ln, nil
}

// DialContext dials from namespace role with d (nil means a zero Dialer).
func (l *Lab) DialContext(ctx context.Context, role string, d *net.Dialer, network, addr string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := l.InNS(role, func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: dial %s %s from %s: %w", network, addr, role, err)
	}
	return c, nil
}

// Dialer returns a DialContext-shaped function that dials from namespace
// role with d, for http.Transport, SOCKS servers and the like.
func (l *Lab) Dialer(role string, d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.DialContext(ctx, role, d, network, addr)
	}
}

// netlink returns a netlink handle bound to namespace role.
func (l *Lab) netlink(role string) (*netlink.Handle, error) {
	l.nlMu.Lock()
	defer l.nlMu.Unlock()
	if h, ok := l.nl[role]; ok {
		return h, nil
	}
	var h *netlink.Handle
	err := l.InNS(role, func() error {
		var err error
		h, err = netlink.NewHandle()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: netlink in %s: %w", role, err)
	}
	l.nl[role] = h
	return h, nil
}

func (l *Lab) sysctl(role, key, val string) error {
	return l.InNS(role, func() error {
		if err := os.WriteFile("/proc/sys/"+key, []byte(val), 0o644); err != nil {
			return fmt.Errorf("netlab: sysctl %s=%s: %w", key, val, err)
		}
		return nil
	})
}

// ip runs iproute2's ip with args.
func (l *Lab) ip(ctx context.Context, args ...string) error { return l.run(ctx, "ip", args...) }

// nft runs nft in namespace role with stdin as its standard input.
func (l *Lab) nft(ctx context.Context, role, stdin string, args ...string) error {
	full := append([]string{"netns", "exec", l.names[role], "nft"}, args...)
	return l.runIn(ctx, strings.NewReader(stdin), "ip", full...)
}

func (l *Lab) run(ctx context.Context, name string, args ...string) error {
	return l.runIn(ctx, nil, name, args...)
}

func (l *Lab) runIn(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	l.log.Debug("netlab: exec", "cmd", name+" "+strings.Join(args, " "), "err", err)
	if err != nil {
		return fmt.Errorf("netlab: %s %s: %s: %w", name, strings.Join(args, " "), bytes.TrimSpace(out), err)
	}
	return nil
}

// Close kills the processes started with Run, stops the relays and deletes
// both namespaces (also killing any process still inside them). It is
// idempotent and returns the first call's result.
func (l *Lab) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		var errs []error
		l.mu.Lock()
		procs := make([]*Proc, 0, len(l.procs))
		for p := range l.procs {
			procs = append(procs, p)
		}
		relays := l.relays
		l.mu.Unlock()
		for _, p := range procs {
			p.Kill()
		}
		for _, r := range relays {
			errs = append(errs, r.Close())
		}
		l.nlMu.Lock()
		for _, h := range l.nl {
			h.Close()
		}
		l.nlMu.Unlock()
		for _, h := range l.nsFD {
			h.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, role := range []string{Client, Exit} {
			errs = append(errs, removeNS(ctx, l.names[role]))
		}
		l.err = errors.Join(errs...)
		l.log.Info("netlab: lab closed", "client", l.names[Client], "err", l.err)
	})
	return l.err
}

// removeNS kills whatever runs in namespace name and deletes it; a
// namespace that does not exist is not an error.
func removeNS(ctx context.Context, name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: ip netns del %s: %s: %w", name, bytes.TrimSpace(out), err)
	}
	return nil
}

// sweepStale deletes namespaces with prefix whose creating process is gone.
func sweepStale(log *slog.Logger, prefix string) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range parseNetnsList(out) {
		p, pid, ok := parseNSName(name)
		if !ok || p != prefix || pidAlive(pid) {
			continue
		}
		err := removeNS(ctx, name)
		log.Info("netlab: removed stale namespace", "name", name, "err", err)
	}
}

func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
