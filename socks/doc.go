// Package socks is braid's SOCKS5 front end (RFC 1928, with RFC 1929
// username/password authentication).
//
// It exists so that local applications can use braid without knowing about
// it: the app speaks plain SOCKS5 to this package, which hands every CONNECT
// to a Dialer (in braid, a mux stream to the exit node) and turns the
// Dialer's error into the matching SOCKS5 reply code.
//
// Destination names are never resolved here. A domain name in the request is
// passed to the Dialer as a name, so the DNS lookup happens at the exit and
// does not leak on the local network. go-socks5's default resolver would
// resolve locally, so it is replaced with one that does nothing.
//
// The protocol handshake (greeting, authentication, request parsing) is done
// by github.com/things-go/go-socks5 v0.1.0, with a deadline set around it
// here because go-socks5 has none. The CONNECT reply and the relay are done
// here too: go-socks5's own CONNECT handler dials with an uncancellable
// context, guesses the reply code from the error text, turns a non-TCP
// bound address (a mux stream) into reply 8, and its relay cannot be
// stopped from outside. BIND and UDP ASSOCIATE are refused with reply 7
// (command not supported); go-socks5 would otherwise relay UDP.
package socks
