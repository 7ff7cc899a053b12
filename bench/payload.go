package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// The payload served by the sink/source server: 8-byte little-endian words,
// word i = splitmix64(seed*golden + i). Deterministic, position dependent (a
// duplicated, lost or reordered chunk changes the hash) and cheap enough
// (~1 ns/word) that the generator never limits a multi-Gbit/s test.

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fillPayload writes the payload bytes [off, off+len(b)) of seed into b.
func fillPayload(b []byte, seed uint64, off int64) {
	base := seed * 0x9e3779b97f4a7c15
	var w [8]byte
	// Unaligned head.
	if r := off % 8; r != 0 {
		binary.LittleEndian.PutUint64(w[:], splitmix64(base+uint64(off/8)))
		n := copy(b, w[r:])
		b, off = b[n:], off+int64(n)
	}
	i := uint64(off / 8)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, splitmix64(base+i))
		b, i = b[8:], i+1
	}
	if len(b) > 0 {
		binary.LittleEndian.PutUint64(w[:], splitmix64(base+i))
		copy(b, w[:])
	}
}

// Payload is an io.Reader of the n-byte payload for seed.
type Payload struct {
	seed uint64
	off  int64
	n    int64
}

// NewPayload returns a reader of the n-byte payload for seed.
func NewPayload(seed uint64, n int64) *Payload { return &Payload{seed: seed, n: n} }

// Read implements io.Reader.
func (p *Payload) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	fillPayload(b, p.seed, p.off)
	p.off += int64(len(b))
	return len(b), nil
}

var sumCache sync.Map // [2]uint64{seed, n} -> [32]byte

// PayloadSum returns the sha256 of the n-byte payload for seed, memoized.
func PayloadSum(seed uint64, n int64) [32]byte {
	key := [2]uint64{seed, uint64(n)}
	if v, ok := sumCache.Load(key); ok {
		return v.([32]byte)
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	io.CopyBuffer(h, NewPayload(seed, n), buf)
	var sum [32]byte
	h.Sum(sum[:0])
	sumCache.Store(key, sum)
	return sum
}

// BytesFor returns how many bytes a link of rateMbit carries in d, a
// transfer size that lasts about d at that rate.
func BytesFor(rateMbit float64, d time.Duration) int64 {
	return int64(rateMbit * 1e6 / 8 * d.Seconds())
}
