package bondtest

import (
	"io"
	"testing"
	"time"
)

// benchTransfer writes b.N writes of size bytes A->B while B drains, and
// returns the time from the first Write to the last byte read.
func benchTransfer(b *testing.B, l *Link, size int) time.Duration {
	b.Helper()
	b.SetBytes(int64(size))
	buf := make([]byte, size)
	total := int64(b.N) * int64(size)
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, l.B(), total)
		done <- err
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := l.A().Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	l.A().Close()
	l.B().Close()
	return elapsed
}

// BenchmarkPipeUnlimited measures the fake link's own overhead.
func BenchmarkPipeUnlimited(b *testing.B) {
	benchTransfer(b, Pipe(LinkConfig{}, LinkConfig{}), 32<<10)
}

// BenchmarkPipe100Mbit runs a real-time 100 Mbit/s, 10 ms link with 32 KiB
// writes and reports the goodput it achieved (transfer time less the one
// propagation delay) and the process CPU it cost.
func BenchmarkPipe100Mbit(b *testing.B) {
	const rate, delay = 100e6 / 8, 10 * time.Millisecond
	l := Pipe(LinkConfig{Rate: rate, Delay: delay}, LinkConfig{Rate: rate, Delay: delay})
	cpu0 := cpuTime()
	elapsed := benchTransfer(b, l, 32<<10)
	cpu := cpuTime() - cpu0
	bits := float64(b.N) * (32 << 10) * 8
	if busy := elapsed - delay; busy > 0 {
		b.ReportMetric(bits/busy.Seconds()/1e6, "Mbit/s")
	}
	if cpu > 0 {
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu%")
	}
}
