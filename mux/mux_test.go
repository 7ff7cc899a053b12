package mux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Several streams move tens of MB both ways at once; every byte must
// arrive exactly, in order, on the right stream.
func TestConcurrentTransfersHashed(t *testing.T) {
	const streams = 4
	size := int64(6 << 20) // per stream and direction: 48 MiB in all
	if testing.Short() {
		size = 1 << 20
	}
	type report struct {
		seed uint64
		n    int64
		sum  [32]byte
	}
	got := make(chan report, streams)
	// The target reads a 16-byte preamble (seed, response size), then
	// sends the response while hashing everything else it receives.
	addr := startTarget(t, func(c net.Conn) {
		var pre [16]byte
		if _, err := io.ReadFull(c, pre[:]); err != nil {
			t.Errorf("target: preamble: %v", err)
			return
		}
		seed := binary.BigEndian.Uint64(pre[:8])
		respLen := int64(binary.BigEndian.Uint64(pre[8:]))
		sent := make(chan error, 1)
		go func() {
			_, err := io.Copy(c, payload(seed+1000, respLen))
			if err == nil {
				err = c.(*net.TCPConn).CloseWrite()
			}
			sent <- err
		}()
		n, s, err := readSum(c)
		if err != nil {
			t.Errorf("target: read: %v", err)
		}
		if err := <-sent; err != nil {
			t.Errorf("target: send: %v", err)
		}
		got <- report{seed, n, s}
	})
	p := newPair(t, testConfig(), testConfig(), netDial, serveHooks{})

	var wg sync.WaitGroup
	for i := range streams {
		seed := uint64(i + 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := p.client.Dial(context.Background(), addr)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer conn.Close()
			sendErr := make(chan error, 1)
			go func() {
				var pre [16]byte
				binary.BigEndian.PutUint64(pre[:8], seed)
				binary.BigEndian.PutUint64(pre[8:], uint64(size))
				_, err := io.Copy(conn, io.MultiReader(bytes.NewReader(pre[:]), payload(seed, size)))
				if err == nil {
					err = conn.(interface{ CloseWrite() error }).CloseWrite()
				}
				sendErr <- err
			}()
			n, s, err := readSum(conn)
			if err != nil {
				t.Errorf("stream %d: read: %v", i, err)
			}
			if err := <-sendErr; err != nil {
				t.Errorf("stream %d: send: %v", i, err)
			}
			if n != size || s != payloadSum(seed+1000, size) {
				t.Errorf("stream %d: downloaded %d bytes, hash mismatch=%v", i, n, s != payloadSum(seed+1000, size))
			}
		}()
	}
	wg.Wait()
	for range streams {
		r := <-got
		if r.n != size || r.sum != payloadSum(r.seed, size) {
			t.Errorf("seed %d: target got %d bytes, hash mismatch=%v", r.seed, r.n, r.sum != payloadSum(r.seed, size))
		}
	}
}

// The client sends a request and half-closes; the target sees EOF only
// after the whole request and the client still gets the whole response.
func TestHalfCloseClientFirst(t *testing.T) {
	const reqLen, respLen = 3 << 20, 2 << 20
	reqSum := make(chan [32]byte, 1)
	addr := startTarget(t, func(c net.Conn) {
		_, s, err := readSum(c) // to EOF: needs the client's half-close
		if err != nil {
			t.Errorf("target read: %v", err)
		}
		reqSum <- s
		if _, err := io.Copy(c, payload(2, respLen)); err != nil {
			t.Errorf("target write: %v", err)
		}
	})
	p := newPair(t, testConfig(), testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.Copy(conn, payload(1, reqLen)); err != nil {
		t.Fatal(err)
	}
	cw := conn.(interface{ CloseWrite() error })
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("second CloseWrite: %v", err)
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("write after CloseWrite: %v, want ErrWriteClosed", err)
	}
	n, s, err := readSum(conn)
	if err != nil || n != respLen || s != payloadSum(2, respLen) {
		t.Fatalf("response: %d bytes, err %v, hash ok %v", n, err, s == payloadSum(2, respLen))
	}
	if got := <-reqSum; got != payloadSum(1, reqLen) {
		t.Fatal("target received a different request")
	}
}

// The target answers and half-closes first; the client reads EOF yet can
// still upload, and the target receives it all.
func TestHalfCloseTargetFirst(t *testing.T) {
	const respLen, upLen = 2 << 20, 3 << 20
	upSum := make(chan [32]byte, 1)
	addr := startTarget(t, func(c net.Conn) {
		if _, err := io.Copy(c, payload(3, respLen)); err != nil {
			t.Errorf("target write: %v", err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Errorf("target CloseWrite: %v", err)
		}
		_, s, err := readSum(c)
		if err != nil {
			t.Errorf("target read: %v", err)
		}
		upSum <- s
	})
	p := newPair(t, testConfig(), testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n, s, err := readSum(conn)
	if err != nil || n != respLen || s != payloadSum(3, respLen) {
		t.Fatalf("download: %d bytes, err %v, hash ok %v", n, err, s == payloadSum(3, respLen))
	}
	if _, err := io.Copy(conn, payload(4, upLen)); err != nil {
		t.Fatalf("upload after EOF: %v", err)
	}
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := <-upSum; got != payloadSum(4, upLen) {
		t.Fatal("target received a different upload")
	}
}

// Every status the exit can send reaches the client with its message, as
// a *ConnectError whose ReplyCode is the SOCKS5 code.
func TestStatusesReachClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused

	sysErr := func(errno error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", errno)}
	}
	tests := []struct {
		name    string
		addr    string
		dialErr error // nil: dial for real
		slow    bool  // dial until the exit's timeout
		want    Status
		wantMsg string
	}{
		{name: "refused", addr: closedAddr, want: StatusConnectionRefused, wantMsg: "refused"},
		{name: "not allowed", addr: "internal.test:22", dialErr: deniedError{}, want: StatusNotAllowed, wantMsg: "denied by policy"},
		{name: "timeout", addr: "slow.test:80", slow: true, want: StatusTimeout, wantMsg: "deadline"},
		{name: "host unreachable", addr: "unreachable.test:80", dialErr: sysErr(syscall.EHOSTUNREACH), want: StatusHostUnreachable, wantMsg: "no route to host"},
		{name: "no such host", addr: "nx.test:80", dialErr: &net.DNSError{Err: "no such host", Name: "nx.test", IsNotFound: true}, want: StatusHostUnreachable, wantMsg: "no such host"},
		{name: "network unreachable", addr: "netunreachable.test:80", dialErr: sysErr(syscall.ENETUNREACH), want: StatusNetworkUnreachable, wantMsg: "unreachable"},
		{name: "general failure", addr: "boom.test:80", dialErr: errors.New("boom"), want: StatusGeneralFailure, wantMsg: "boom"},
	}
	dialed := make(chan string, len(tests))
	byAddr := map[string]int{}
	for i, tc := range tests {
		byAddr[tc.addr] = i
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed <- addr
		tc := tests[byAddr[addr]]
		switch {
		case tc.slow:
			<-ctx.Done()
			return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
		case tc.dialErr != nil:
			return nil, tc.dialErr
		}
		return netDial(ctx, network, addr)
	}
	ecfg := testConfig()
	ecfg.ConnectTimeout = 200 * time.Millisecond
	p := newPair(t, testConfig(), ecfg, dial, serveHooks{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := p.client.Dial(context.Background(), tc.addr)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			ce := asConnectError(t, err)
			if ce.Status != tc.want || ce.ReplyCode() != byte(tc.want) {
				t.Fatalf("status %v (code %d), want %v: %v", ce.Status, ce.ReplyCode(), tc.want, err)
			}
			if !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Fatalf("message %q lacks %q", ce.Msg, tc.wantMsg)
			}
			if got := <-dialed; got != tc.addr {
				t.Fatalf("exit dialed %q, want %q (unresolved)", got, tc.addr)
			}
		})
	}
	if n := p.client.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after failed dials", n)
	}
}

// The client gives up after its own ConnectTimeout, or when ctx is
// cancelled, while the exit is still dialing.
func TestDialClientSideTimeoutAndCancel(t *testing.T) {
	entered := make(chan struct{}, 2)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		entered <- struct{}{}
		<-ctx.Done() // until the session ends
		return nil, ctx.Err()
	}
	ccfg := testConfig()
	ccfg.ConnectTimeout = 150 * time.Millisecond
	p := newPair(t, ccfg, testConfig(), dial, serveHooks{})

	_, err := p.client.Dial(context.Background(), "example.test:443")
	ce := asConnectError(t, err)
	if ce.Status != StatusTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want timeout wrapping DeadlineExceeded", err)
	}
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.client.Dial(ctx, "example.test:443")
		errc <- err
	}()
	<-entered
	cancel()
	err = <-errc
	ce = asConnectError(t, err)
	if ce.Status != StatusGeneralFailure || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want general failure wrapping Canceled", err)
	}
	if n := p.client.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after abandoned dials", n)
	}
}

// holdTarget keeps each connection open until the client closes it.
func holdTarget(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

func TestExitMaxStreams(t *testing.T) {
	addr := startTarget(t, holdTarget)
	done := make(chan struct{}, 8)
	ecfg := testConfig()
	ecfg.MaxStreams = 2
	ecfg.MaxPendingConnects = 2
	p := newPair(t, testConfig(), ecfg, netDial, serveHooks{streamDone: func() { done <- struct{}{} }})

	c1, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = p.client.Dial(context.Background(), addr)
	ce := asConnectError(t, err)
	if ce.Status != StatusGeneralFailure || !strings.Contains(ce.Msg, "too many streams") {
		t.Fatalf("third dial: %v", err)
	}
	<-done // the refused stream's handler
	c1.Close()
	<-done // c1's relay
	c3, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatalf("dial after a slot freed: %v", err)
	}
	c3.Close()
}

func TestClientMaxStreams(t *testing.T) {
	addr := startTarget(t, holdTarget)
	ccfg := testConfig()
	ccfg.MaxStreams = 1
	ccfg.MaxPendingConnects = 1
	p := newPair(t, ccfg, testConfig(), netDial, serveHooks{})
	c1, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.client.Dial(context.Background(), addr)
	if ce := asConnectError(t, err); ce.Status != StatusGeneralFailure || !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("second dial: %v", err)
	}
	if n := p.client.NumStreams(); n != 1 {
		t.Fatalf("NumStreams %d, want 1", n)
	}
	c1.Close()
	c1.Close() // idempotent, must not free a second slot
	if n := p.client.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after close, want 0", n)
	}
	c2, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

func TestExitMaxPendingConnects(t *testing.T) {
	addr := startTarget(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == addr {
			entered <- struct{}{}
			<-release
		}
		return netDial(ctx, network, a)
	}
	ecfg := testConfig()
	ecfg.MaxPendingConnects = 1
	p := newPair(t, testConfig(), ecfg, dial, serveHooks{})

	type res struct {
		c   net.Conn
		err error
	}
	first := make(chan res, 1)
	go func() {
		c, err := p.client.Dial(context.Background(), addr)
		first <- res{c, err}
	}()
	<-entered // the one allowed dial is in progress
	_, err := p.client.Dial(context.Background(), "other.test:80")
	if ce := asConnectError(t, err); ce.Status != StatusGeneralFailure || !strings.Contains(ce.Msg, "pending") {
		t.Fatalf("second dial: %v", err)
	}
	close(release)
	r := <-first
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	msg := []byte("still works")
	if _, err := r.c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r.c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A stream whose reader never reads fills only its own window; another
// stream on the same session keeps moving.
func TestUnreadStreamDoesNotStallOthers(t *testing.T) {
	const echoLen = 4 << 20
	firehose := startTarget(t, func(c net.Conn) {
		_, _ = io.Copy(c, payload(9, 256<<20)) // far more than any window
	})
	echo := startTarget(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	cfg := testConfig()
	cfg.StreamWindow = minStreamWindow
	p := newPair(t, cfg, cfg, netDial, serveHooks{})

	stuck, err := p.client.Dial(context.Background(), firehose)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	// Let the firehose fill its window before the other stream starts.
	if _, err := io.ReadFull(stuck, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	conn, err := p.client.Dial(context.Background(), echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, payload(10, echoLen))
		_ = conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	n, s, err := readSum(conn)
	if err != nil || n != echoLen || s != payloadSum(10, echoLen) {
		t.Fatalf("echo stream: %d bytes, err %v, hash ok %v", n, err, s == payloadSum(10, echoLen))
	}
}

// Losing the transport must not look like a clean end of stream.
func TestSessionLossIsNotEOF(t *testing.T) {
	addr := startTarget(t, holdTarget)
	p := newPair(t, testConfig(), testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 10))
		readErr <- err
	}()
	p.clientRaw.Close()
	if err := <-readErr; !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("read after transport loss: %v, want ErrSessionClosed", err)
	}
	<-p.client.Done()
	if err := <-p.serveErr; !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Serve returned %v, want ErrSessionClosed", err)
	}
	p.serveErr <- nil // for the cleanup
	_, err = p.client.Dial(context.Background(), addr)
	if ce := asConnectError(t, err); !errors.Is(ce, ErrSessionClosed) {
		t.Fatalf("dial on dead session: %v", err)
	}
}

// Cancelling Serve's ctx ends the session, closes target conns, and
// Serve returns only after its relays.
func TestServeContextCancel(t *testing.T) {
	targetClosed := make(chan struct{})
	addr := startTarget(t, func(c net.Conn) {
		holdTarget(c)
		close(targetClosed)
	})
	a, b := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	serveErr := make(chan error, 1)
	go func() { serveErr <- Serve(ctx, b, testConfig(), netDial) }()
	c, err := NewClient(a, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := c.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cancel()
	if err := <-serveErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v, want context.Canceled", err)
	}
	<-targetClosed
	<-c.Done()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// The exit's idle timeout closes a stream nobody uses, and its target.
func TestExitIdleTimeout(t *testing.T) {
	targetDone := make(chan struct{})
	addr := startTarget(t, func(c net.Conn) {
		holdTarget(c)
		close(targetDone)
	})
	ecfg := testConfig()
	ecfg.IdleTimeout = 150 * time.Millisecond
	p := newPair(t, testConfig(), ecfg, netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on idle stream: %v, want EOF from the exit's close", err)
	}
	<-targetDone
}

// The client's idle timeout fails its own stream with ErrIdleTimeout.
func TestClientIdleTimeout(t *testing.T) {
	addr := startTarget(t, holdTarget)
	ccfg := testConfig()
	ccfg.IdleTimeout = 150 * time.Millisecond
	p := newPair(t, ccfg, testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("read: %v, want ErrIdleTimeout", err)
	}
	if n := p.client.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after idle close", n)
	}
}

// Raw streams with broken headers get the right status, then EOF.
func TestExitRejectsBadHeaders(t *testing.T) {
	ecfg := testConfig()
	ecfg.HandshakeTimeout = 150 * time.Millisecond
	var dials atomic.Int64
	dial := func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("must not dial")
	}
	a, b := tcpPair(t)
	serveErr := make(chan error, 1)
	go func() { serveErr <- Serve(context.Background(), b, ecfg, dial) }()
	sess, err := newRawClient(a)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sess.Close()
		<-serveErr
	}()

	tests := []struct {
		name    string
		hdr     []byte
		want    Status
		wantMsg string
	}{
		{"version", []byte{9, 1, 127, 0, 0, 1, 0, 80}, StatusGeneralFailure, "version"},
		{"address type", []byte{Version, 2, 0, 0}, StatusAddrTypeNotSupported, "address type"},
		{"empty domain", []byte{Version, 3, 0, 0, 80}, StatusGeneralFailure, "domain"},
		{"NUL in domain", []byte{Version, 3, 3, 'a', 0, 'b', 0, 80}, StatusGeneralFailure, "domain"},
		{"port 0", []byte{Version, 1, 127, 0, 0, 1, 0, 0}, StatusGeneralFailure, "port"},
		{"silent", nil, StatusGeneralFailure, "timeout"},
		{"truncated", []byte{Version, 3, 200, 'a'}, StatusGeneralFailure, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sess.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Write(tc.hdr); err != nil {
				t.Fatal(err)
			}
			status, msg, err := ReadReply(st)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.want || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("reply %v %q, want %v containing %q", status, msg, tc.want, tc.wantMsg)
			}
			if n, err := st.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("after refusal: %d, %v; want EOF", n, err)
			}
		})
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("exit dialed %d times for bad headers", n)
	}
}

// A byte-exact echo through one stream, checking payload follows the
// header directly in both directions.
func TestEchoSmall(t *testing.T) {
	addr := startTarget(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	p := newPair(t, testConfig(), testConfig(), netDial, serveHooks{})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.LocalAddr().(*net.TCPAddr); !ok {
		t.Fatalf("LocalAddr %T, want *net.TCPAddr (go-socks5 needs it)", conn.LocalAddr())
	}
	if got := conn.RemoteAddr().String(); got != addr {
		t.Fatalf("RemoteAddr %q, want %q", got, addr)
	}
	want := sha256.Sum256([]byte("hello"))
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || sha256.Sum256(buf) != want {
		t.Fatalf("echo %q, %v", buf, err)
	}
}

// Closing a stream whose peer keeps sending must not leave the exit's
// relay and target blocked for good: yamux's close timeout resets it.
func TestCloseStopsSendingPeer(t *testing.T) {
	targetDone := make(chan error, 1)
	addr := startTarget(t, func(c net.Conn) {
		_, err := io.Copy(c, payload(11, 1<<30)) // until the exit closes it
		targetDone <- err
	})
	done := make(chan struct{}, 1)
	cfg := testConfig()
	cfg.StreamWindow = minStreamWindow
	cfg.StreamCloseTimeout = 200 * time.Millisecond
	p := newPair(t, cfg, cfg, netDial, serveHooks{streamDone: func() { done <- struct{}{} }})
	conn, err := p.client.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if n := p.client.NumStreams(); n != 0 {
		t.Fatalf("NumStreams %d after Close", n)
	}
	// Without the reset both would wait forever; bound the wait so a
	// regression fails instead of hanging the suite.
	select {
	case <-done: // the exit's relay ended
	case <-time.After(10 * time.Second):
		t.Fatal("exit relay still running 10s after the client closed the stream")
	}
	if err := <-targetDone; err == nil {
		t.Fatal("target finished a 1 GiB send to a closed stream")
	}
}
