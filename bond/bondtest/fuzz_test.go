package bondtest

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"
)

// FuzzTransfer drives random shapes, write and read sizes and a Block
// through a link in fake time: both directions must arrive byte-exact,
// never faster than the rate and delay allow, and exactly on the model's
// schedule when nothing else holds the link back.
func FuzzTransfer(f *testing.F) {
	f.Add([]byte("hello"), uint16(1), uint32(0), uint8(0), uint16(0), uint32(0), uint16(100), uint16(100), uint8(0), uint64(1))
	f.Add([]byte{1, 2, 3}, uint16(60000), uint32(1e6), uint8(10), uint16(0), uint32(0), uint16(40000), uint16(9000), uint8(0), uint64(2))
	f.Add([]byte("0123456789"), uint16(20000), uint32(5e5), uint8(3), uint16(3000), uint32(20000), uint16(65535), uint16(1), uint8(7), uint64(3))
	f.Add([]byte{0}, uint16(255), uint32(1000), uint8(255), uint16(256), uint32(300), uint16(1), uint16(65535), uint8(50), uint64(4))
	f.Fuzz(fuzzOne)
}

func fuzzOne(t *testing.T, seed []byte, repeat uint16, rate uint32, delayMs uint8, queue uint16, recvBuf uint32, maxW, maxR uint16, blockMs uint8, rs uint64) {
	data := bytes.Repeat(seed, int(repeat))
	// A short seed repeated keeps inputs small for the fuzzer to mutate
	// and minimise while transfers still span many segments.
	if len(seed) > 64 || len(data) == 0 || len(data) > 256<<10 {
		t.Skip()
	}
	cfg := LinkConfig{
		Rate:       int64(rate),
		Delay:      time.Duration(delayMs) * time.Millisecond,
		QueueBytes: int(queue),
		RecvBuffer: int(recvBuf % (1 << 20)),
	}
	// Keep the number of segments, and so of events, in the thousands.
	unit := max(1, len(data)/2048)
	if cfg.QueueBytes != 0 {
		cfg.QueueBytes = max(cfg.QueueBytes, unit)
	}
	if cfg.RecvBuffer != 0 {
		cfg.RecvBuffer = max(cfg.RecvBuffer, unit)
	}
	maxW, maxR = max(maxW, uint16(unit)), max(maxR, uint16(unit))
	back := bytes.Clone(data)
	for i := range back {
		back[i] ^= 0x5a
	}
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(cfg, cfg)
		defer l.Close()
		start := time.Now()
		rb, ra := goRead(l.B(), rs, int(maxR)+1), goRead(l.A(), rs+1, int(maxR)+1)
		wa, wb := goWrite(l.A(), data, rs+2, int(maxW)+1, true), goWrite(l.B(), back, rs+3, int(maxW)+1, true)
		if blockMs > 0 {
			time.Sleep(time.Duration(blockMs) * time.Millisecond)
			l.Block()
			time.Sleep(time.Duration(blockMs) * time.Millisecond)
			l.Unblock()
		}
		for _, ch := range []<-chan error{wa, wb} {
			if err := <-ch; err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		resB, resA := <-rb, <-ra
		checkTransfer(t, "a->b", data, resB)
		checkTransfer(t, "b->a", back, resA)
		took := resB.last.Sub(start)
		floor := txDur(int64(len(data)), cfg.Rate) + cfg.Delay
		if took < floor {
			t.Fatalf("%d bytes took %v, faster than rate and delay allow (%v)", len(data), took, floor)
		}
		// Writers stay ahead of the link, so it never idles: the last
		// byte lands on the model's schedule (within rounding).
		if blockMs == 0 && cfg.RecvBuffer == 0 && took > floor+time.Duration(len(data)) {
			t.Fatalf("%d bytes took %v, want %v", len(data), took, floor)
		}
		l.A().Close()
		l.B().Close()
	})
}
