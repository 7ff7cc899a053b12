package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/braid-proxy/braid/internal/netlab"
	"golang.org/x/sys/unix"
)

// IdleTarget is a listener in the exit namespace that never accepts: the
// kernel completes each handshake and parks the connection in the accept
// queue, so thousands of idle proxied connections cost this process no file
// descriptor on the target side (the test's own limit is 20,000).
type IdleTarget struct {
	fd   int
	port int
	once sync.Once
}

// StartIdleTarget listens on 0.0.0.0:0 in lab's exit namespace with an
// accept queue of backlog, raising the namespace's somaxconn to fit.
func StartIdleTarget(ctx context.Context, lab *netlab.Lab, backlog int) (*IdleTarget, error) {
	it := &IdleTarget{fd: -1}
	err := lab.InNS(netlab.Exit, func() error {
		if err := os.WriteFile("/proc/sys/net/core/somaxconn", []byte(strconv.Itoa(backlog)), 0o644); err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		it.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrInet4{}); err != nil {
			return err
		}
		if err := unix.Listen(fd, backlog); err != nil {
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		it.port = sa.(*unix.SockaddrInet4).Port
		return nil
	})
	if err != nil {
		it.Close()
		return nil, fmt.Errorf("bench: idle target: %w", err)
	}
	return it, nil
}

// Target is netlab.TargetIP:port.
func (it *IdleTarget) Target() string {
	return net.JoinHostPort(netlab.TargetIP.String(), strconv.Itoa(it.port))
}

// Queued returns how many established connections wait in the accept queue.
func (it *IdleTarget) Queued() (int, error) {
	ti, err := unix.GetsockoptTCPInfo(it.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, fmt.Errorf("bench: idle target: %w", err)
	}
	// For a listener, tcpi_unacked is the current accept-queue length.
	return int(ti.Unacked), nil
}

// Close closes the listener, resetting every queued connection.
func (it *IdleTarget) Close() error {
	var err error
	it.once.Do(func() {
		if it.fd >= 0 {
			err = unix.Close(it.fd)
		}
	})
	return err
}
