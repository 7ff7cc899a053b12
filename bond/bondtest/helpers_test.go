package bondtest

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// writeChunks writes data in pseudo-random pieces of 1..maxChunk bytes.
func writeChunks(c net.Conn, data []byte, seed uint64, maxChunk int) error {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(maxChunk))
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

type readResult struct {
	sum  [32]byte
	n    int
	last time.Time // when the last byte was read
	err  error     // nil on clean EOF
}

// readAll reads until EOF in pseudo-random sizes, hashing what it gets.
func readAll(c net.Conn, seed uint64, maxChunk int) readResult {
	r := rand.New(rand.NewPCG(seed, 2))
	h := sha256.New()
	buf := make([]byte, maxChunk)
	var res readResult
	for {
		n, err := c.Read(buf[:1+r.IntN(maxChunk)])
		if n > 0 {
			h.Write(buf[:n])
			res.n += n
			res.last = time.Now()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.err = err
			}
			break
		}
	}
	copy(res.sum[:], h.Sum(nil))
	return res
}

func goRead(c net.Conn, seed uint64, maxChunk int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() { ch <- readAll(c, seed, maxChunk) }()
	return ch
}

func goWrite(c net.Conn, data []byte, seed uint64, maxChunk int, closeWrite bool) <-chan error {
	ch := make(chan error, 1)
	go func() {
		err := writeChunks(c, data, seed, maxChunk)
		if err == nil && closeWrite {
			err = c.(*Conn).CloseWrite()
		}
		ch <- err
	}()
	return ch
}

func checkTransfer(t *testing.T, what string, data []byte, res readResult) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("%s: read: %v", what, res.err)
	}
	if res.n != len(data) || res.sum != sha256.Sum256(data) {
		t.Fatalf("%s: got %d bytes (hash %x), want %d (hash %x)", what, res.n, res.sum[:6], len(data), sha256.Sum256(data))
	}
}

// blocked reports whether ch has nothing to receive yet.
func blocked[T any](ch <-chan T) bool {
	select {
	case v := <-ch:
		_ = v
		return false
	default:
		return true
	}
}

// pending returns a receive-once channel for f's result, run in a goroutine.
func pending[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

type ioResult struct {
	n   int
	err error
	at  time.Time // when the call returned
	buf []byte    // p[:n]
}

func goOp(f func([]byte) (int, error), p []byte) <-chan ioResult {
	return pending(func() ioResult {
		n, err := f(p)
		return ioResult{n, err, time.Now(), p[:n]}
	})
}
