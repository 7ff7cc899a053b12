package bondtest

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// SetRate reschedules what is not yet transmitted.
func TestSetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e6}, LinkConfig{Rate: 1e5})
		defer l.Close()
		start := time.Now()
		data := randBytes(40, 1e6)
		rd := goRead(l.B(), 1, 32<<10)
		wr := goWrite(l.A(), data, 2, 32<<10, true)
		time.Sleep(500 * time.Millisecond)
		l.SetRate(2e6, 1e5) // second half at twice the speed
		res := <-rd
		checkTransfer(t, "a->b", data, res)
		if err := <-wr; err != nil {
			t.Fatal(err)
		}
		if got, want := res.last.Sub(start), 750*time.Millisecond; got < want-time.Microsecond || got > want+time.Microsecond {
			t.Errorf("took %v, want %v", got, want)
		}

		// Lifting the limit delivers everything queued at once.
		start = time.Now()
		back := randBytes(41, 100000)
		ra := goRead(l.A(), 3, 32<<10)
		wb := goWrite(l.B(), back, 4, 32<<10, true)
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if st := l.Stats().BToA; st.Read < 15000 || st.Read > 25000 {
			t.Fatalf("at 100 kB/s read %d in 200ms", st.Read)
		}
		l.SetRate(2e6, 0)
		res = <-ra
		checkTransfer(t, "b->a", back, res)
		if err := <-wb; err != nil {
			t.Fatal(err)
		}
		if got := res.last.Sub(start); got != 200*time.Millisecond {
			t.Errorf("unlimited rest arrived after %v, want 200ms", got)
		}
	})
}

// A rate change while blocked applies when the link resumes.
func TestSetRateWhileBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e5, Delay: 5 * time.Millisecond}, LinkConfig{})
		defer l.Close()
		if _, err := l.A().Write(make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		l.Block()
		time.Sleep(time.Second)
		l.SetRate(1e6, 0)
		l.Unblock()
		start := time.Now()
		if _, err := io.ReadFull(l.B(), make([]byte, 10000)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 15*time.Millisecond {
			t.Fatalf("took %v after Unblock, want 15ms (10ms at the new rate + 5ms delay)", d)
		}
	})
}

// Concurrent Writes never interleave.
func TestConcurrentWritesAtomic(t *testing.T) {
	const writers, records, size = 4, 10, 40000
	l := Pipe(LinkConfig{Rate: 100e6, QueueBytes: 20000}, LinkConfig{})
	defer l.Close()
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			rec := bytes.Repeat([]byte{byte(w + 1)}, size)
			for range records {
				if _, err := l.A().Write(rec); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	counts := make(map[byte]int)
	buf := make([]byte, size)
	for range writers * records {
		if _, err := io.ReadFull(l.B(), buf); err != nil {
			t.Fatal(err)
		}
		if buf[0] == 0 || !bytes.Equal(buf, bytes.Repeat(buf[:1], size)) {
			t.Fatalf("interleaved record starting with writer %d", buf[0])
		}
		counts[buf[0]]++
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		if counts[byte(w+1)] != records {
			t.Fatalf("counts %v", counts)
		}
	}
}

func TestAddrsAndLinks(t *testing.T) {
	l := PipeNamed("wan1", LinkConfig{}, LinkConfig{})
	defer l.Close()
	if l.Name() != "wan1" || l.A().Link() != l || l.B().Link() != l {
		t.Fatal("names")
	}
	var c net.Conn = l.A()
	if c.LocalAddr().String() != "wan1/a" || c.RemoteAddr().String() != "wan1/b" ||
		l.B().LocalAddr().String() != "wan1/b" || c.LocalAddr().Network() != "bondtest" {
		t.Fatalf("addrs %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	ls := Links(3, LinkConfig{Delay: time.Millisecond}, LinkConfig{Delay: 2 * time.Millisecond})
	if len(ls) != 3 || ls[0].Name() == ls[1].Name() || ls[2].ab.cfg.Delay != time.Millisecond ||
		ls[1].ba.cfg.Delay != 2*time.Millisecond {
		t.Fatalf("Links: %v", ls)
	}
	for _, l := range append(ls, Links(1)...) {
		l.Close()
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []LinkConfig{
		{Rate: -1}, {Delay: -1}, {QueueBytes: -1}, {RecvBuffer: -1},
		{Rate: 1e9, Delay: time.Hour},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := (LinkConfig{Rate: 1e9, Delay: time.Hour, RecvBuffer: 1 << 20}).Validate(); err != nil {
		t.Errorf("explicit RecvBuffer: %v", err)
	}
	if got := (LinkConfig{Rate: 12.5e6, Delay: time.Second}).recvBuffer(12.5e6); got != 25e6 {
		t.Errorf("default RecvBuffer %d, want 2*BDP", got)
	}
	for _, f := range []func(){
		func() { Pipe(LinkConfig{Rate: -5}, LinkConfig{}) },
		func() { Pipe(LinkConfig{}, LinkConfig{}).SetRate(-1, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestTimingMath(t *testing.T) {
	cases := []struct {
		n, rate int64
		want    time.Duration
	}{
		{16384, 1e6, 16384 * time.Microsecond},
		{1, 3, 333333334}, // rounded up: never faster than the rate
		{100, 0, 0},
		{0, 5, 0},
		{math.MaxInt64, 1, math.MaxInt64}, // saturates
	}
	for _, c := range cases {
		if got := txDur(c.n, c.rate); got != c.want {
			t.Errorf("txDur(%d, %d) = %d, want %d", c.n, c.rate, got, c.want)
		}
	}
	if got := bytesIn(time.Second, 12.5e6); got != 12.5e6 {
		t.Errorf("bytesIn = %d", got)
	}
	if got := bytesIn(math.MaxInt64, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("bytesIn saturation = %d", got)
	}
}

// Delivered counts bytes that reached the receiver, read or not.
func TestStatsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1000, Delay: 10 * time.Millisecond}, LinkConfig{})
		defer l.Close()
		if _, err := l.A().Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		want := func(at string, st, exp DirStats) {
			t.Helper()
			if st != exp {
				t.Fatalf("%s: %+v, want %+v", at, st, exp)
			}
		}
		time.Sleep(109 * time.Millisecond) // 100 ms on the wire + 10 ms
		want("in flight", l.Stats().AToB, DirStats{Written: 100, Unread: 100})
		time.Sleep(time.Millisecond)
		want("delivered", l.Stats().AToB, DirStats{Written: 100, Delivered: 100, Unread: 100})
		l.B().Read(make([]byte, 60))
		want("read", l.Stats().AToB, DirStats{Written: 100, Delivered: 100, Read: 60, Unread: 40})
	})
}

// Blackhole keeps what already reached the receiver's buffer.
func TestBlackholeKeepsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Delay: 10 * time.Millisecond}, LinkConfig{})
		defer l.Close()
		l.A().Write([]byte("early"))
		time.Sleep(10 * time.Millisecond)
		l.A().Write([]byte("late"))
		l.Blackhole()
		buf := make([]byte, 100)
		n, err := l.B().Read(buf)
		if err != nil || string(buf[:n]) != "early" {
			t.Fatalf("Read %q %v", buf[:n], err)
		}
		l.B().SetReadDeadline(time.Now().Add(time.Hour))
		if _, err := l.B().Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after the hole: %v", err)
		}
		if st := l.Stats().AToB; st.Dropped != 4 || st.Read != 5 {
			t.Fatalf("stats %+v", st)
		}
	})
}
