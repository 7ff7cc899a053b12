package bondtest

import (
	"io"
	"testing"
	"time"
)

func TestDbgRate(t *testing.T) {
	l := Pipe(LinkConfig{Rate: 12.5e6, Delay: 10 * time.Millisecond}, LinkConfig{})
	defer l.Close()
	done := make(chan error, 1)
	const total = 400 * 32 << 10
	go func() { _, err := io.CopyN(io.Discard, l.B(), total); done <- err }()
	buf := make([]byte, 32<<10)
	start := time.Now()
	var maxW time.Duration
	for range 400 {
		t0 := time.Now()
		l.A().Write(buf)
		maxW = max(maxW, time.Since(t0))
	}
	wdone := time.Since(start)
	<-done
	el := time.Since(start)
	t.Logf("writes done %v, all read %v, expect %v; maxW %v; lastTxEnd %v", wdone, el, txDur(total, 12.5e6)+10*time.Millisecond, maxW, l.ab.lastTxEnd)
}
