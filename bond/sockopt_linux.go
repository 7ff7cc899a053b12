//go:build linux

package bond

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setNotSentLowat sets TCP_NOTSENT_LOWAT on the TCP socket under conn
// (through TLS and other wrappers that expose NetConn). Best effort: a
// link that is not TCP works without it, only with a deeper queue.
func setNotSentLowat(conn net.Conn, bytes int) {
	if bytes <= 0 {
		return
	}
	for {
		if sc, ok := conn.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				raw.Control(func(fd uintptr) {
					unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, bytes)
				})
			}
			return
		}
		nc, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		conn = nc.NetConn()
	}
}
