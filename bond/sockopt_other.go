//go:build !linux

package bond

import "net"

func setNotSentLowat(net.Conn, int) {}
