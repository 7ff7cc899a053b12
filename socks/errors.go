package socks

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) and carry a "socks: " prefix.
var (
	// ErrInvalidConfig is wrapped by every error from Config.Validate.
	ErrInvalidConfig = errors.New("socks: invalid config")
	// ErrPublicWithoutAuth means Listen is not a loopback address, no
	// Credentials are set and AllowPublic is false: such a proxy would be
	// an open relay.
	ErrPublicWithoutAuth = errors.New("socks: refusing to listen on a non-loopback address without credentials (set AllowPublic to override)")
	// ErrNilDialer is returned by NewServer when the Dialer is nil.
	ErrNilDialer = errors.New("socks: nil dialer")
	// ErrClosed is returned by Serve and ListenAndServe when they are called
	// after Close.
	ErrClosed = errors.New("socks: server closed")
	// ErrCredentialsFile is wrapped by LoadCredentials for a malformed file.
	ErrCredentialsFile = errors.New("socks: bad credentials file")
	// errBadDestination is used internally for a request whose destination
	// cannot be dialed (empty or malformed name, port 0).
	errBadDestination = errors.New("socks: invalid destination")
)
