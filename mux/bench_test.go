package mux

import (
	"context"
	"github.com/braid-proxy/braid/internal/iox"
	"io"
	"net"
	"testing"
)

// BenchmarkStreamThroughput measures one stream's upload throughput
// client → exit → target over a loopback TCP transport (MB/s is per
// stream; the real bond adds its own cost).
func BenchmarkStreamThroughput(b *testing.B) {
	got := make(chan int64, 1)
	addr := startTarget(b, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	p := newPair(b, testConfig(), testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	chunk := make([]byte, iox.BigSize)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if n := <-got; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("target got %d bytes, want %d", n, int64(b.N)*int64(len(chunk)))
	}
}
