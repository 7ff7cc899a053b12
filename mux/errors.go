package mux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// Sentinel errors. Errors returned by this package wrap one of these (or a
// cause from the standard library) so callers can test with errors.Is.
var (
	// ErrVersion: a CONNECT request or reply carries a version this
	// package does not speak.
	ErrVersion = errors.New("mux: unsupported header version")
	// ErrAddrType: a CONNECT request carries an unknown address type.
	ErrAddrType = errors.New("mux: unsupported address type")
	// ErrBadDomain: a domain name is empty, longer than MaxDomainLen or
	// contains a control character (NUL included).
	ErrBadDomain = errors.New("mux: invalid domain name")
	// ErrBadAddress: an address is not "host:port", or its IP carries a
	// zone that cannot travel to the exit.
	ErrBadAddress = errors.New("mux: invalid address")
	// ErrBadPort: a port is missing, not numeric, or 0.
	ErrBadPort = errors.New("mux: invalid port")
	// ErrBadStatus: a CONNECT reply carries a status outside 0..8.
	ErrBadStatus = errors.New("mux: invalid reply status")
	// ErrTruncated: a buffer ends before the header it holds.
	ErrTruncated = errors.New("mux: truncated header")
	// ErrSessionClosed: the yamux session (and so every stream in it) has
	// ended; reads report it instead of io.EOF so that a cut connection is
	// never taken for a complete one.
	ErrSessionClosed = errors.New("mux: session closed")
	// ErrTooManyStreams: MaxStreams streams are already open.
	ErrTooManyStreams = errors.New("mux: too many streams")
	// ErrTooManyPending: the exit already has MaxPendingConnects dials in
	// progress.
	ErrTooManyPending = errors.New("mux: too many pending connects")
	// ErrWriteClosed: Write after CloseWrite.
	ErrWriteClosed = errors.New("mux: write side closed")
	// ErrStreamReset: the peer reset the stream (yamux RST).
	ErrStreamReset = errors.New("mux: stream reset by peer")
	// ErrIdleTimeout: the stream was closed because no byte moved in
	// either direction for Config.IdleTimeout.
	ErrIdleTimeout = errors.New("mux: stream idle timeout")
	// ErrInvalidConfig: Config.Validate rejected a field.
	ErrInvalidConfig = errors.New("mux: invalid config")
)

// Status is the exit's answer to a CONNECT. Its values are numerically the
// SOCKS5 reply codes (RFC 1928 section 6), so socks can forward them as-is.
type Status uint8

// The statuses. The exit only sends 0..6 and 8; 7 exists for completeness.
const (
	StatusOK                   Status = 0
	StatusGeneralFailure       Status = 1
	StatusNotAllowed           Status = 2 // refused by the exit's policy
	StatusNetworkUnreachable   Status = 3
	StatusHostUnreachable      Status = 4 // includes "no such host"
	StatusConnectionRefused    Status = 5
	StatusTimeout              Status = 6 // SOCKS5 "TTL expired"
	StatusCommandNotSupported  Status = 7
	StatusAddrTypeNotSupported Status = 8
)

// maxStatus is the highest status a reply may carry.
const maxStatus = StatusAddrTypeNotSupported

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusGeneralFailure:
		return "general failure"
	case StatusNotAllowed:
		return "not allowed by policy"
	case StatusNetworkUnreachable:
		return "network unreachable"
	case StatusHostUnreachable:
		return "host unreachable"
	case StatusConnectionRefused:
		return "connection refused"
	case StatusTimeout:
		return "timeout"
	case StatusCommandNotSupported:
		return "command not supported"
	case StatusAddrTypeNotSupported:
		return "address type not supported"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ConnectError is what Client.Dial returns when no stream was established:
// either the exit answered with a non-OK status (Msg holds its message) or
// the attempt failed on this side (Err holds the cause). Either way
// ReplyCode tells socks which SOCKS5 reply to send.
type ConnectError struct {
	Addr   string // the destination asked for
	Status Status // never StatusOK
	Msg    string // the exit's message, if it answered
	Err    error  // the local cause, if the exit did not answer
}

// Error describes the failure.
func (e *ConnectError) Error() string {
	s := "mux: connect " + e.Addr + ": " + e.Status.String()
	if e.Msg != "" {
		s += " (exit: " + e.Msg + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// ReplyCode returns the SOCKS5 reply code for this failure.
func (e *ConnectError) ReplyCode() byte { return byte(e.Status) }

// Unwrap returns the local cause, if any.
func (e *ConnectError) Unwrap() error { return e.Err }

// StatusFor maps a dial error to the status the exit sends back. nil maps
// to StatusOK. Errors are recognised by behaviour and errno, not by type,
// so the egress policy and the standard library need no import here:
//
//   - an error with NotAllowed() bool returning true: StatusNotAllowed;
//   - an error with ReplyCode() byte (a nested mux hop): that code;
//   - ECONNREFUSED: StatusConnectionRefused;
//   - ENETUNREACH: StatusNetworkUnreachable;
//   - EHOSTUNREACH, or a DNS failure that is not a timeout (no such host,
//     server failure): StatusHostUnreachable;
//   - a timeout (context.DeadlineExceeded, ETIMEDOUT, net.Error.Timeout):
//     StatusTimeout;
//   - anything else: StatusGeneralFailure.
func StatusFor(err error) Status {
	if err == nil {
		return StatusOK
	}
	var na interface{ NotAllowed() bool }
	if errors.As(err, &na) && na.NotAllowed() {
		return StatusNotAllowed
	}
	var rc interface{ ReplyCode() byte }
	if errors.As(err, &rc) {
		if c := Status(rc.ReplyCode()); c != StatusOK && c <= maxStatus {
			return c
		}
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return StatusNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return StatusHostUnreachable
	}
	if isTimeout(err) {
		return StatusTimeout
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		// Any resolver failure means the host cannot be reached by name.
		return StatusHostUnreachable
	}
	return StatusGeneralFailure
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
