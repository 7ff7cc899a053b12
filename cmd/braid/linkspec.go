package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// linkSpec is one --link: a path to the exit, carried by conns parallel
// TCP connections.
type linkSpec struct {
	Name   string     // label in stats and logs
	To     string     // exit address for this link; "" = --exit
	Dev    string     // bind to this interface (SO_BINDTODEVICE)
	Src    netip.Addr // source address; zero = the route's choice
	Conns  int        // parallel TCP connections on this path
	Backup bool       // carries data only while no other link is healthy
}

// maxConnsPerLink bounds conns=N so a typo cannot open thousands of
// connections.
const maxConnsPerLink = 16

// parseLinkSpec parses "to=HOST:PORT,dev=IFACE,src=IP,conns=N,name=NAME,backup".
func parseLinkSpec(s string) (linkSpec, error) {
	sp := linkSpec{Conns: 1}
	if strings.TrimSpace(s) == "" {
		return sp, fmt.Errorf("braid: empty --link spec")
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(strings.TrimSpace(kv), "=")
		if seen[k] {
			return sp, fmt.Errorf("braid: --link %q: %q given twice", s, k)
		}
		seen[k] = true
		if !hasValue && k != "backup" {
			return sp, fmt.Errorf("braid: --link %q: %q needs a value (key=value)", s, k)
		}
		switch k {
		case "to":
			host, port, err := net.SplitHostPort(v)
			if err != nil || host == "" {
				return sp, fmt.Errorf("braid: --link %q: to=%q is not HOST:PORT", s, v)
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				return sp, fmt.Errorf("braid: --link %q: bad port in to=%q", s, v)
			}
			sp.To = v
		case "dev":
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \x00") {
				return sp, fmt.Errorf("braid: --link %q: dev=%q is not an interface name", s, v)
			}
			sp.Dev = v
		case "src":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return sp, fmt.Errorf("braid: --link %q: src=%q is not an IP address", s, v)
			}
			sp.Src = a
		case "conns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxConnsPerLink {
				return sp, fmt.Errorf("braid: --link %q: conns=%q must be 1..%d", s, v, maxConnsPerLink)
			}
			sp.Conns = n
		case "name":
			if v == "" || len(v) > 64 {
				return sp, fmt.Errorf("braid: --link %q: name must be 1..64 characters", s)
			}
			sp.Name = v
		case "backup":
			if hasValue {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return sp, fmt.Errorf("braid: --link %q: backup=%q is not a boolean", s, v)
				}
				sp.Backup = b
			} else {
				sp.Backup = true
			}
		default:
			return sp, fmt.Errorf("braid: --link %q: unknown key %q (want to, dev, src, conns, name, backup)", s, k)
		}
	}
	return sp, nil
}
