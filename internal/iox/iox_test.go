package iox

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// chunky returns its data in reads of random size, some tiny, some
// filling the buffer, so Copy switches buffers many times.
type chunky struct {
	data []byte
	rnd  *rand.Rand
	bigs int // reads that filled a big buffer
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if c.rnd.IntN(3) == 0 {
		n = 1 + c.rnd.IntN(100)
	}
	n = min(n, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(p) == BigSize && n == BigSize {
		c.bigs++
	}
	return n, nil
}

func TestCopyByteExact(t *testing.T) {
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 1))
		data := make([]byte, rnd.IntN(4<<20))
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		src := &chunky{data: data, rnd: rnd}
		var dst bytes.Buffer
		n, err := Copy(&dst, src)
		if err != nil || n != int64(len(data)) || sha256.Sum256(dst.Bytes()) != sha256.Sum256(data) {
			t.Fatalf("seed %d: copied %d of %d, err %v", seed, n, len(data), err)
		}
		if len(data) > 1<<20 && src.bigs == 0 {
			t.Fatalf("seed %d: never used the big buffer for %d bytes", seed, len(data))
		}
	}
}

// An idle source is read with the small buffer only.
func TestCopyIdleUsesSmallBuffer(t *testing.T) {
	sizes := make(chan int, 100)
	r := readerFunc(func(p []byte) (int, error) {
		sizes <- len(p)
		if len(sizes) == cap(sizes) {
			return 0, io.EOF
		}
		return 10, nil // a trickle: never fills even the small buffer
	})
	if _, err := Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	close(sizes)
	for n := range sizes {
		if n != smallSize {
			t.Fatalf("read with a %d-byte buffer while trickling", n)
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("boom")
	}
	w.n -= len(p)
	return len(p), nil
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestCopyErrors(t *testing.T) {
	src := &chunky{data: make([]byte, 1<<20), rnd: rand.New(rand.NewPCG(1, 2))}
	if _, err := Copy(&failWriter{n: 1000}, src); err == nil || err.Error() != "boom" {
		t.Fatalf("write error: %v", err)
	}
	src = &chunky{data: make([]byte, 1000), rnd: rand.New(rand.NewPCG(1, 2))}
	if _, err := Copy(shortWriter{}, src); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
	rerr := errors.New("read failed")
	if _, err := Copy(io.Discard, io.MultiReader(bytes.NewReader([]byte("abc")), readerFunc(func([]byte) (int, error) { return 0, rerr }))); err != rerr {
		t.Fatalf("read error: %v", err)
	}
}

// BenchmarkCopy compares Copy with io.Copy on a bulk transfer (MB/s).
func BenchmarkCopy(b *testing.B) {
	data := make([]byte, 64<<20)
	for _, name := range []string{"iox", "io"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				src := struct{ io.Reader }{bytes.NewReader(data)}
				dst := struct{ io.Writer }{io.Discard}
				if name == "iox" {
					Copy(dst, src)
				} else {
					io.Copy(dst, src)
				}
			}
		})
	}
}
