package link

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadlineExact checks, on a fake clock, that a refused or stalled
// peer is closed exactly at HandshakeTimeout: not a tick before (holding
// hides why it failed) and not after (slots are freed on time).
func TestDeadlineExact(t *testing.T) {
	const timeout = 10 * time.Second
	for _, tc := range []struct {
		name string
		send []byte
		hold bool
		want error
	}{
		{"stalled after one byte", []byte{22}, false, ErrHandshake},
		{"stalled, hold", []byte{22}, true, ErrHandshake},
		{"http refused, held", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true, ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(newSecret(t))
				cfg.HandshakeTimeout = timeout
				cfg.HoldOnFailure = tc.hold
				srv, err := NewServer(cfg)
				if err != nil {
					t.Fatal(err)
				}
				peer, exit := net.Pipe()
				defer peer.Close()
				done := make(chan error, 1)
				go func() {
					_, err := srv.Handshake(context.Background(), exit)
					done <- err
				}()
				got := make(chan int64, 1)
				go func() {
					peer.Write(tc.send)
					n, _ := io.Copy(io.Discard, peer)
					got <- n
				}()

				time.Sleep(timeout - time.Nanosecond)
				synctest.Wait()
				select {
				case err := <-done:
					t.Fatalf("handshake ended before the deadline: %v", err)
				default:
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				select {
				case err := <-done:
					if !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					if !tc.hold && !isTimeout(err) {
						t.Fatalf("got %v, want a timeout", err)
					}
				default:
					t.Fatal("handshake still running after the deadline")
				}
				if n := <-got; n != 0 {
					t.Fatalf("peer got %d bytes", n)
				}
			})
		})
	}
}

// TestCancelStopsHold: cancelling the context (Listener.Close) ends a
// hold at once instead of at the deadline.
func TestCancelStopsHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(newSecret(t))
		cfg.HandshakeTimeout = time.Minute
		cfg.HoldOnFailure = true
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		peer, exit := net.Pipe()
		defer peer.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := srv.Handshake(ctx, exit)
			done <- err
		}()
		go func() {
			peer.Write([]byte("not tls at all"))
			io.Copy(io.Discard, peer)
		}()
		time.Sleep(time.Second)
		start := time.Now()
		cancel()
		// The failure happened before the cancel; the cancel only ends
		// the hold.
		if err := <-done; !errors.Is(err, ErrHandshake) {
			t.Fatalf("got %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("cancel took %v of fake time", d)
		}
	})
}
