package mux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "slow" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

type notAllowedFalse struct{}

func (notAllowedFalse) Error() string    { return "x" }
func (notAllowedFalse) NotAllowed() bool { return false }

func TestStatusFor(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	tests := []struct {
		err  error
		want Status
	}{
		{nil, StatusOK},
		{deniedError{}, StatusNotAllowed},
		{fmt.Errorf("egress: %w", deniedError{}), StatusNotAllowed},
		{notAllowedFalse{}, StatusGeneralFailure},
		{op(syscall.ECONNREFUSED), StatusConnectionRefused},
		{op(syscall.ENETUNREACH), StatusNetworkUnreachable},
		{op(syscall.EHOSTUNREACH), StatusHostUnreachable},
		{op(syscall.ETIMEDOUT), StatusTimeout},
		{&net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, StatusHostUnreachable},
		{&net.DNSError{Err: "server misbehaving", Name: "x.test"}, StatusHostUnreachable},
		{&net.DNSError{Err: "i/o timeout", Name: "x.test", IsTimeout: true}, StatusTimeout},
		{context.DeadlineExceeded, StatusTimeout},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), StatusTimeout},
		{os.ErrDeadlineExceeded, StatusTimeout},
		{timeoutErr{}, StatusTimeout},
		{context.Canceled, StatusGeneralFailure},
		{errors.New("boom"), StatusGeneralFailure},
		{&ConnectError{Status: StatusConnectionRefused}, StatusConnectionRefused},
	}
	for _, tc := range tests {
		if got := StatusFor(tc.err); got != tc.want {
			t.Errorf("StatusFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestConnectError(t *testing.T) {
	e := &ConnectError{Addr: "x.test:80", Status: StatusHostUnreachable, Msg: "no such host"}
	var rc interface{ ReplyCode() byte }
	if !errors.As(fmt.Errorf("socks: %w", e), &rc) || rc.ReplyCode() != 4 {
		t.Fatal("ReplyCode not reachable through wrapping")
	}
	if s := e.Error(); !strings.HasPrefix(s, "mux: ") || !strings.Contains(s, "no such host") || !strings.Contains(s, "x.test:80") {
		t.Fatalf("Error() = %q", s)
	}
	local := &ConnectError{Addr: "x", Status: StatusTimeout, Err: context.DeadlineExceeded}
	if !errors.Is(local, context.DeadlineExceeded) {
		t.Fatal("Unwrap lost the cause")
	}
	for s := StatusOK; s <= maxStatus+1; s++ {
		if s.String() == "" {
			t.Fatalf("status %d has no name", s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"small window", func(c *Config) { c.StreamWindow = 1024 }},
		{"huge window", func(c *Config) { c.StreamWindow = 2 << 30 }},
		{"no streams", func(c *Config) { c.MaxStreams = 0 }},
		{"too many streams", func(c *Config) { c.MaxStreams = maxMaxStreams + 1 }},
		{"no pending", func(c *Config) { c.MaxPendingConnects = 0 }},
		{"pending > streams", func(c *Config) { c.MaxStreams = 10; c.MaxPendingConnects = 11 }},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = 0 }},
		{"handshake timeout", func(c *Config) { c.HandshakeTimeout = -time.Second }},
		{"idle", func(c *Config) { c.IdleTimeout = -1 }},
		{"close timeout", func(c *Config) { c.StreamCloseTimeout = -1 }},
		{"open timeout", func(c *Config) { c.StreamOpenTimeout = -1 }},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", tc.name, err)
		}
	}
	a, b := net.Pipe()
	defer b.Close()
	bad := DefaultConfig()
	bad.MaxStreams = 0
	if _, err := NewClient(a, bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewClient with bad config: %v", err)
	}
	a.Close()
	if err := Serve(context.Background(), b, DefaultConfig(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Serve without dial: %v", err)
	}
}

func TestYamuxLogger(t *testing.T) {
	var buf strings.Builder
	var h = newRecordingLogger(&buf)
	y := yamuxLogger{h}
	y.Printf("[ERR] yamux: Failed to read header: %v", "EOF")
	y.Println("[WARN] yamux: frame for missing stream")
	y.Print("plain")
	out := buf.String()
	for _, want := range []string{"level=WARN msg=\"yamux: Failed to read header: EOF\"", "level=DEBUG msg=\"yamux: frame for missing stream\"", "level=DEBUG msg=plain"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
