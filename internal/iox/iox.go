// Package iox copies between connections without pinning memory to idle
// ones.
//
// A proxy holding 10,000 mostly idle connections cannot afford a 32 KiB
// buffer per direction per connection parked in Read (io.Copy does exactly
// that). Copy reads into a small stack buffer while a connection is quiet
// and borrows a large pooled buffer only while data flows, handing it back
// as soon as a read comes back short again.
package iox

import (
	"io"
	"sync"
)

// BigSize is the buffer used while data flows.
const BigSize = 32 << 10

// smallSize is read into while the connection is quiet: one small packet.
const smallSize = 512

var bigPool = sync.Pool{New: func() any { b := make([]byte, BigSize); return &b }}

// Copy copies src to dst until EOF (returns nil) or an error, like
// io.Copy, but without holding a large buffer while src is idle.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	var small [smallSize]byte
	var big *[]byte
	defer func() {
		if big != nil {
			bigPool.Put(big)
		}
	}()
	var total int64
	for {
		buf := small[:]
		if big != nil {
			buf = *big
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr == nil && w != n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		case big == nil && n == len(buf):
			big = bigPool.Get().(*[]byte) // data is flowing
		case big != nil && n < smallSize:
			bigPool.Put(big) // quiet again: do not park on the big buffer
			big = nil
		}
	}
}
