package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
)

// Link is one veth pair between the client and exit namespaces.
type Link struct {
	lab *Lab
	// Index is the link's position, i in c<i>/e<i> and 10.200.i.0/24.
	Index int
	// Spec is the shaping the link was made with.
	Spec LinkSpec
	// ClientDev and ExitDev are the interface names in each namespace.
	ClientDev, ExitDev string
	// ClientIP and ExitIP are the /24 addresses of each end.
	ClientIP, ExitIP netip.Addr

	mu         sync.Mutex
	blackholed bool
	down       bool
	relays     map[int]*relay
}

// table is the routing table used by packets sourced from ClientIP.
func (k *Link) table() int { return 100 + k.Index }

// routes (re)installs the routes to TargetIP over this link: the per-source
// table for ClientIP and the main-table fallback with metric 100+i. The
// kernel drops them when the link goes down, so SetDown(false) calls this.
func (k *Link) routes(ctx context.Context) error {
	l := k.lab
	cns := l.names[Client]
	dst := TargetNet.String()
	for _, extra := range [][]string{
		{"table", strconv.Itoa(k.table())},
		{"metric", strconv.Itoa(100 + k.Index)},
	} {
		args := append([]string{"-n", cns, "route", "replace", dst, "via", k.ExitIP.String(),
			"dev", k.ClientDev, "onlink"}, extra...)
		if err := l.ip(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Blackhole starts (on) or stops dropping every packet that crosses the
// link, in both directions, without any RST or ICMP: an nft input-hook drop
// in each namespace for the link's device. Idempotent.
func (k *Link) Blackhole(on bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lab.closed.Load() {
		return ErrClosed
	}
	if k.blackholed == on {
		return nil
	}
	verb := "add"
	if !on {
		verb = "delete"
	}
	ctx := context.Background()
	for _, end := range [][2]string{{Exit, k.ExitDev}, {Client, k.ClientDev}} {
		if err := k.lab.nft(ctx, end[0], "", verb, "element", "inet", "braidlab", "bh", "{", end[1], "}"); err != nil {
			return fmt.Errorf("netlab: link %d blackhole %v: %w", k.Index, on, err)
		}
	}
	k.blackholed = on
	return nil
}

// SetDown takes the link down (on) or back up. Down is set on the client
// end; the exit end loses carrier with it. Up restores the link's routes.
// Idempotent.
func (k *Link) SetDown(on bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lab.closed.Load() {
		return ErrClosed
	}
	if k.down == on {
		return nil
	}
	state := "down"
	if !on {
		state = "up"
	}
	ctx := context.Background()
	if err := k.lab.ip(ctx, "-n", k.lab.names[Client], "link", "set", k.ClientDev, state); err != nil {
		return fmt.Errorf("netlab: link %d set %s: %w", k.Index, state, err)
	}
	if !on {
		if err := k.routes(ctx); err != nil {
			return fmt.Errorf("netlab: link %d restore routes: %w", k.Index, err)
		}
	}
	k.down = on
	return nil
}

// Counters are the byte and packet counters of the link's client end: Rx is
// exit->client, Tx is client->exit.
type Counters struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
}

// Counters reads the client end's interface counters.
func (k *Link) Counters() (Counters, error) {
	h, err := k.lab.netlink(Client)
	if err != nil {
		return Counters{}, err
	}
	k.lab.nlMu.Lock()
	defer k.lab.nlMu.Unlock()
	lk, err := h.LinkByName(k.ClientDev)
	if err != nil {
		return Counters{}, fmt.Errorf("netlab: link %d counters: %w", k.Index, err)
	}
	s := lk.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("netlab: link %d: no statistics", k.Index)
	}
	return Counters{RxBytes: s.RxBytes, TxBytes: s.TxBytes, RxPackets: s.RxPackets, TxPackets: s.TxPackets}, nil
}

// Endpoint returns the address a client-namespace process dials to reach
// port (a TCP listener in the exit namespace, on 0.0.0.0 or the link's
// ExitIP) over this link. Without DelayMs that is ExitIP:port; with it, the
// address of a delay relay in the exit namespace forwarding to port, started
// on first use and stopped by Lab.Close.
func (k *Link) Endpoint(ctx context.Context, port int) (netip.AddrPort, error) {
	if port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("netlab: endpoint port %d out of range", port)
	}
	if k.Spec.DelayMs == 0 {
		return netip.AddrPortFrom(k.ExitIP, uint16(port)), nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if r, ok := k.relays[port]; ok {
		return r.addr, nil
	}
	r, err := startRelay(ctx, k, port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if k.relays == nil {
		k.relays = map[int]*relay{}
	}
	k.relays[port] = r
	l := k.lab
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		r.Close()
		return netip.AddrPort{}, ErrClosed
	}
	l.relays = append(l.relays, r)
	l.mu.Unlock()
	return r.addr, nil
}
