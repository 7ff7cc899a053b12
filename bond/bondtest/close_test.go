package bondtest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// Blackhole: the peer sees nothing more, the writer fills the queue and
// blocks for good, and Link.Close releases everyone with an error.
func TestBlackhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const q = 32 << 10
		l := Pipe(LinkConfig{Rate: 1e6, Delay: 5 * time.Millisecond, QueueBytes: q}, LinkConfig{Delay: 5 * time.Millisecond})
		data := randBytes(20, 1<<20)
		rd := goRead(l.B(), 21, 10000)
		wr := goWrite(l.A(), data, 22, 8000, true)
		backRd := goRead(l.A(), 23, 100)

		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		l.Blackhole()
		hole := l.Stats()
		if _, err := l.B().Write([]byte("lost")); err != nil {
			t.Fatalf("write after Blackhole: %v", err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		st := l.Stats()
		if !blocked(wr) || !blocked(rd) || !blocked(backRd) {
			t.Fatal("a call returned on a blackholed link")
		}
		if st.AToB.Read != hole.AToB.Delivered || st.AToB.Delivered != hole.AToB.Delivered || st.BToA.Delivered != 0 {
			t.Fatalf("data reached the peer after Blackhole: at hole %+v, now %+v", hole, st)
		}
		// The untransmitted queue (at most q) was full at once; no more.
		if grew := st.AToB.Written - hole.AToB.Written; grew > q {
			t.Fatalf("writer queued %d bytes into a blackhole, want <= %d", grew, q)
		}
		if st.AToB.Dropped != st.AToB.Written-st.AToB.Read {
			t.Fatalf("dropped %d, want %d", st.AToB.Dropped, st.AToB.Written-st.AToB.Read)
		}
		l.Unblock() // does not undo a blackhole
		l.Block()
		l.Unblock()
		synctest.Wait()
		if !blocked(wr) || !blocked(rd) {
			t.Fatal("Unblock revived a blackholed link")
		}

		l.Close()
		if err := <-wr; !errors.Is(err, ErrLinkClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("writer: %v", err)
		}
		for _, ch := range []<-chan readResult{rd, backRd} {
			if r := <-ch; !errors.Is(r.err, ErrLinkClosed) {
				t.Fatalf("reader: %v", r.err)
			}
		}
	})
}

// Closing the writer's own end also releases a writer stuck on a
// blackhole; the peer never learns (the FIN is lost) until it closes too.
func TestBlackholeCloseEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e5}, LinkConfig{Rate: 1e5})
		l.Blackhole()
		l.Blackhole()
		wr := goWrite(l.A(), make([]byte, 1<<20), 1, 1<<20, false)
		rd := goOp(l.B().Read, make([]byte, 10))
		synctest.Wait()
		if !blocked(wr) || !blocked(rd) {
			t.Fatal("call returned")
		}
		l.A().Close()
		if err := <-wr; !errors.Is(err, ErrClosed) {
			t.Fatalf("writer: %v", err)
		}
		// B's writes are not refused: A's close is lost in the hole.
		if _, err := l.B().Write([]byte("x")); err != nil {
			t.Fatalf("B write: %v", err)
		}
		synctest.Wait()
		if !blocked(rd) {
			t.Fatal("B saw A's close through a blackhole")
		}
		l.B().Close()
		if r := <-rd; !errors.Is(r.err, ErrClosed) {
			t.Fatalf("B read: %v", r.err)
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Delay: 10 * time.Millisecond}, LinkConfig{Delay: 10 * time.Millisecond})
		defer l.Close()
		a, b := l.A(), l.B()
		aRead := goOp(a.Read, make([]byte, 10))
		if _, err := b.Write([]byte("in flight to a")); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("hello world")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if r := <-aRead; !errors.Is(r.err, ErrClosed) || !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("pending Read on closed end: %v", r.err)
		}
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "hello world" {
			t.Fatalf("peer read %q, %v", got, err)
		}
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Fatalf("EOF after %v, want the 10ms delay", d)
		}
		if n, err := b.Read(make([]byte, 4)); n != 0 || err != io.EOF {
			t.Fatalf("Read after EOF: %d, %v", n, err)
		}
		if _, err := b.Write([]byte("x")); !errors.Is(err, ErrPeerClosed) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Write to closed peer: %v", err)
		}
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
		if err := a.CloseWrite(); !errors.Is(err, ErrClosed) {
			t.Fatalf("CloseWrite after Close: %v", err)
		}
		if err := a.SetDeadline(time.Now()); !errors.Is(err, ErrClosed) {
			t.Fatalf("SetDeadline after Close: %v", err)
		}
		if st := l.Stats().BToA; st.Dropped != int64(len("in flight to a")) {
			t.Fatalf("b->a stats %+v", st)
		}
		b.Close()
	})
}

// Closing one end releases a peer writer blocked on a full buffer.
func TestPeerCloseUnblocksWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{RecvBuffer: 1000}, LinkConfig{})
		defer l.Close()
		wr := goOp(l.A().Write, make([]byte, 5000))
		synctest.Wait()
		if !blocked(wr) {
			t.Fatal("writer not blocked")
		}
		l.B().Close()
		if r := <-wr; r.n != 1000 || !errors.Is(r.err, ErrPeerClosed) {
			t.Fatalf("Write: %d, %v", r.n, r.err)
		}
		if st := l.Stats().AToB; st.Dropped != 1000 || st.Unread != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestCloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Rate: 1e6}, LinkConfig{Rate: 1e6})
		defer l.Close()
		a, b := l.A(), l.B()
		up, down := randBytes(30, 100000), randBytes(31, 50000)
		rb := goRead(b, 1, 4096)
		if err := writeChunks(a, up, 2, 9000); err != nil {
			t.Fatal(err)
		}
		if err := a.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if err := a.CloseWrite(); err != nil {
			t.Fatalf("second CloseWrite: %v", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, ErrWriteClosed) {
			t.Fatalf("Write after CloseWrite: %v", err)
		}
		checkTransfer(t, "a->b", up, <-rb)
		// The other direction still works after the half-close.
		ra := goRead(a, 3, 4096)
		if err := writeChunks(b, down, 4, 9000); err != nil {
			t.Fatal(err)
		}
		b.CloseWrite()
		checkTransfer(t, "b->a", down, <-ra)
		a.Close()
		b.Close()
	})
}

// Link.Close releases every blocked call on both ends and drops unread data.
func TestLinkClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{RecvBuffer: 100}, LinkConfig{})
		ar := goOp(l.A().Read, make([]byte, 1))
		aw := goOp(l.A().Write, make([]byte, 300))
		synctest.Wait()
		l.Close()
		l.Close()
		if r := <-ar; !errors.Is(r.err, ErrLinkClosed) {
			t.Fatalf("A read: %v", r.err)
		}
		if r := <-aw; r.n != 100 || !errors.Is(r.err, ErrLinkClosed) {
			t.Fatalf("A write: %d %v", r.n, r.err)
		}
		if _, err := l.B().Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("B read: %v", err)
		}
		if _, err := l.B().Write([]byte("x")); !errors.Is(err, ErrLinkClosed) {
			t.Fatalf("B write: %v", err)
		}
		if st := l.Stats().AToB; st.Dropped != 100 || st.Unread != 0 {
			t.Fatalf("stats %+v", st)
		}
		l.A().Close()
		l.B().Close()
	})
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Pipe(LinkConfig{Delay: 50 * time.Millisecond}, LinkConfig{QueueBytes: 5000})
		defer l.Close()
		a, b := l.A(), l.B()
		start := time.Now()

		// A deadline interrupts a blocked Read at exactly its time.
		b.SetReadDeadline(start.Add(30 * time.Millisecond))
		_, err := b.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read: %v", err)
		}
		if d := time.Since(start); d != 30*time.Millisecond {
			t.Fatalf("deadline hit after %v", d)
		}

		// Moving the deadline while blocked: later, then cleared.
		b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		rd := goOp(b.Read, make([]byte, 5))
		time.Sleep(5 * time.Millisecond)
		b.SetReadDeadline(time.Now().Add(time.Hour))
		time.Sleep(10 * time.Millisecond)
		b.SetReadDeadline(time.Time{})
		sent := time.Now()
		a.Write([]byte("hello"))
		if r := <-rd; r.err != nil || string(r.buf) != "hello" || r.at.Sub(sent) != 50*time.Millisecond {
			t.Fatalf("Read %q %v after %v", r.buf, r.err, r.at.Sub(sent))
		}

		// An expired deadline fails even with data waiting, and can be lifted.
		a.Write([]byte("more"))
		time.Sleep(time.Second)
		b.SetReadDeadline(time.Unix(1, 0))
		if _, err := b.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past deadline: %v", err)
		}
		b.SetReadDeadline(time.Time{})
		if n, err := b.Read(make([]byte, 4)); n != 4 || err != nil {
			t.Fatalf("Read: %d %v", n, err)
		}

		// The "wake a blocked Read now" idiom: a deadline in the past.
		rd = goOp(b.Read, make([]byte, 1))
		synctest.Wait()
		b.SetDeadline(time.Unix(1, 0))
		if r := <-rd; !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Fatalf("woken Read: %v", r.err)
		}
		b.SetDeadline(time.Time{})

		// A write deadline interrupts a Write blocked on the queue and
		// reports what went in.
		l.Block()
		b.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		wstart := time.Now()
		n, err := b.Write(make([]byte, 20000))
		if n != 5000 || !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(wstart) != 20*time.Millisecond {
			t.Fatalf("Write: %d %v after %v", n, err, time.Since(wstart))
		}
		if _, err := b.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write past deadline: %v", err)
		}
		b.SetWriteDeadline(time.Time{})
		l.Unblock()
		got := make([]byte, 5000)
		if _, err := io.ReadFull(a, got); err != nil {
			t.Fatal(err)
		}
	})
}

// Zero-length calls return at once and still report errors.
func TestZeroLength(t *testing.T) {
	l := Pipe(LinkConfig{}, LinkConfig{})
	if n, err := l.A().Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil): %d %v", n, err)
	}
	if n, err := l.B().Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil): %d %v", n, err)
	}
	l.Close()
	if _, err := l.B().Read(nil); !errors.Is(err, ErrLinkClosed) {
		t.Fatalf("Read(nil) on closed link: %v", err)
	}
}
