package main

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pathDialer dials the exit over one uplink: bound to an interface
// (SO_BINDTODEVICE; CAP_NET_RAW before Linux 5.7) and/or from a source address,
// so policy routing sends it out of that uplink.
func pathDialer(sp linkSpec, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	if sp.Src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: sp.Src.AsSlice()}
	}
	if sp.Dev != "" {
		dev := sp.Dev
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.BindToDevice(int(fd), dev)
			})
			if err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("braid: bind to device %s (needs CAP_NET_RAW before Linux 5.7): %w", dev, err)
			}
			return nil
		}
	}
	return d
}

// dialLink opens one TCP connection of a link.
func dialLink(ctx context.Context, sp linkSpec, exit string, timeout time.Duration) (net.Conn, error) {
	to := sp.To
	if to == "" {
		to = exit
	}
	c, err := pathDialer(sp, timeout).DialContext(ctx, "tcp", to)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return c, nil
}
