package bondtest

import (
	"bytes"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// Real time, shaped, both directions at once, odd write and read sizes.
func TestTransferBothWays(t *testing.T) {
	l := Pipe(LinkConfig{Rate: 40e6, Delay: 2 * time.Millisecond}, LinkConfig{Rate: 25e6, Delay: 3 * time.Millisecond, QueueBytes: 20000})
	defer l.Close()
	ab, ba := randBytes(1, 2<<20+12345), randBytes(2, 1<<20+777)
	rb, ra := goRead(l.B(), 3, 50000), goRead(l.A(), 4, 3000)
	wa, wb := goWrite(l.A(), ab, 5, 70000, true), goWrite(l.B(), ba, 6, 5000, true)
	for _, ch := range []<-chan error{wa, wb} {
		if err := <-ch; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	checkTransfer(t, "a->b", ab, <-rb)
	checkTransfer(t, "b->a", ba, <-ra)
	st := l.Stats()
	if st.AToB.Written != int64(len(ab)) || st.AToB.Read != int64(len(ab)) || st.AToB.Delivered != int64(len(ab)) ||
		st.BToA.Written != int64(len(ba)) || st.BToA.Read != int64(len(ba)) || st.AToB.Dropped != 0 || st.AToB.Unread != 0 {
		t.Fatalf("stats %+v", st)
	}
	l.A().Close()
	l.B().Close()
}

// 1 MB at 1 MB/s with 10 ms delay takes exactly 1.01 s of fake time.
func TestRateExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e6, Delay: 10 * time.Millisecond}, LinkConfig{})
		start := time.Now()
		data := randBytes(7, 1e6)
		var first time.Time
		done := pending(func() readResult {
			buf := make([]byte, 1)
			if _, err := io.ReadFull(l.B(), buf); err != nil {
				return readResult{err: err}
			}
			first = time.Now()
			res := readAll(l.B(), 8, 32<<10)
			res.n++
			return res
		})
		wdone := goWrite(l.A(), data, 9, 32<<10, true)
		res := <-done
		if err := <-wdone; err != nil {
			t.Fatal(err)
		}
		if res.err != nil || res.n != len(data) {
			t.Fatalf("read %d bytes, err %v", res.n, res.err)
		}
		if got, want := first.Sub(start), txDur(SegmentSize, 1e6)+10*time.Millisecond; got != want {
			t.Errorf("first byte after %v, want %v", got, want)
		}
		if got, want := res.last.Sub(start), 1010*time.Millisecond; got < want || got > want+txDur(SegmentSize, 1e6) {
			t.Errorf("last byte after %v, want %v (+1 segment)", got, want)
		}
		l.Close()
	})
}

// A Write blocks on the send queue: with QueueBytes untransmitted it only
// returns when the link has nearly drained it.
func TestQueueBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const q = 64 << 10
		l := Pipe(LinkConfig{Rate: 1e6, QueueBytes: q}, LinkConfig{})
		defer l.Close()
		start := time.Now()
		rd := goRead(l.B(), 1, 64<<10)
		data := randBytes(3, 1e6)
		if _, err := l.A().Write(data); err != nil {
			t.Fatal(err)
		}
		// The last segment goes in once at most q-len(seg) bytes wait.
		took := time.Since(start)
		if lo, hi := txDur(1e6-q-SegmentSize, 1e6), txDur(1e6-q, 1e6); took < lo || took > hi {
			t.Errorf("Write returned after %v, want in [%v, %v]", took, lo, hi)
		}
		l.A().CloseWrite()
		checkTransfer(t, "a->b", data, <-rd)
	})
}

// Without a reader the writer stops at RecvBuffer, and resumes losslessly.
func TestRecvBufferBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rb = 100000
		l := Pipe(LinkConfig{RecvBuffer: rb, Delay: time.Millisecond}, LinkConfig{})
		defer l.Close()
		data := randBytes(4, 1<<20)
		wr := goWrite(l.A(), data, 5, 40000, true)
		synctest.Wait()
		if !blocked(wr) {
			t.Fatal("writer not held back by RecvBuffer")
		}
		if st := l.Stats().AToB; st.Written > rb || st.Written < rb-SegmentSize || st.Unread != st.Written {
			t.Fatalf("stats %+v, want Written in (%d, %d]", st, rb-SegmentSize, rb)
		}
		checkTransfer(t, "a->b", data, readAll(l.B(), 6, 9000))
		if err := <-wr; err != nil {
			t.Fatal(err)
		}
	})
}

// Delay in each direction, measured by a ping-pong.
func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Delay: 25 * time.Millisecond}, LinkConfig{Delay: 7 * time.Millisecond})
		defer l.Close()
		echo := pending(func() error {
			buf := make([]byte, 4)
			for range 3 {
				if _, err := io.ReadFull(l.B(), buf); err != nil {
					return err
				}
				if _, err := l.B().Write(buf); err != nil {
					return err
				}
			}
			return nil
		})
		buf := make([]byte, 4)
		for i := range 3 {
			start := time.Now()
			if _, err := l.A().Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(l.A(), buf); err != nil {
				t.Fatal(err)
			}
			if rtt := time.Since(start); rtt != 32*time.Millisecond {
				t.Fatalf("round %d: rtt %v, want 32ms", i, rtt)
			}
		}
		if err := <-echo; err != nil {
			t.Fatal(err)
		}
	})
}

// Block freezes both directions; Unblock resumes exactly where it stopped
// and nothing is lost.
func TestBlockUnblock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e6, Delay: 10 * time.Millisecond}, LinkConfig{Delay: 5 * time.Millisecond})
		defer l.Close()
		start := time.Now()
		data := randBytes(10, 200000)
		rd := goRead(l.B(), 11, 20000)
		wr := goWrite(l.A(), data, 12, 30000, true)

		time.Sleep(50 * time.Millisecond)
		l.Block()
		back := goOp(l.A().Read, make([]byte, 10))
		if _, err := l.B().Write([]byte("while blocked")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		before := l.Stats()
		time.Sleep(time.Second)
		synctest.Wait()
		if after := l.Stats(); after != before {
			t.Fatalf("link moved while blocked:\n%+v\n%+v", before, after)
		}
		if !blocked(wr) || !blocked(rd) || !blocked(back) {
			t.Fatal("a call finished while blocked")
		}
		if before.AToB.Read == 0 || before.AToB.Written == int64(len(data)) {
			t.Fatalf("test timing off: %+v", before.AToB)
		}
		unblocked := time.Now()
		l.Unblock()
		res := <-rd
		checkTransfer(t, "a->b", data, res)
		if err := <-wr; err != nil {
			t.Fatal(err)
		}
		// 200 kB at 1 MB/s + 10 ms, plus exactly the time spent blocked.
		if got, want := res.last.Sub(start), 210*time.Millisecond+time.Second; got != want {
			t.Errorf("transfer took %v, want %v", got, want)
		}
		r := <-back
		if r.err != nil || string(r.buf) != "while bloc" || r.at.Sub(unblocked) != 5*time.Millisecond {
			t.Errorf("b->a: %q %v after %v", r.buf, r.err, r.at.Sub(unblocked))
		}
	})
}

// Blocking an unlimited, undelayed link still holds data and writers.
func TestBlockUnlimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const q = 10000
		l := Pipe(LinkConfig{QueueBytes: q}, LinkConfig{})
		defer l.Close()
		l.Block()
		l.Block()
		rd := goOp(l.B().Read, make([]byte, 100))
		data := randBytes(13, 50000)
		wr := goWrite(l.A(), data, 14, 3000, true)
		synctest.Wait()
		if !blocked(rd) || !blocked(wr) {
			t.Fatal("data moved through a blocked link")
		}
		if st := l.Stats().AToB; st.Written > q || st.Written < q-3000 || st.Delivered != 0 {
			t.Fatalf("stats %+v", st)
		}
		l.Unblock()
		l.Unblock()
		r := <-rd
		if r.err != nil || !bytes.Equal(r.buf, data[:r.n]) {
			t.Fatalf("first read %d %v", r.n, r.err)
		}
		checkTransfer(t, "rest", data[r.n:], readAll(l.B(), 15, 7000))
		if err := <-wr; err != nil {
			t.Fatal(err)
		}
	})
}
