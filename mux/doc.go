// Package mux carries many proxied TCP connections over one bond session.
//
// The bond gives braid a single reliable byte stream between client and
// exit; every SOCKS5 CONNECT the client accepts must become its own
// independent, flow-controlled stream inside it, so that one slow or stuck
// connection never stalls the others. mux does that with
// github.com/hashicorp/yamux and adds the one thing yamux lacks for a
// proxy: each stream starts with a small versioned CONNECT header naming
// the destination (a domain is sent unresolved, so names resolve at the
// exit), and the exit answers with a status that is numerically a SOCKS5
// reply code, so package socks can pass it straight to the application.
//
//	client (Client.Dial)                               exit (Serve)
//	yamux SYN + CONNECT{version, addr, port}  ──▶  read header (deadline),
//	                                               check limits, dial target
//	                          ◀── REPLY{version, status, message}
//	payload both ways, half-closes propagated, until both sides are done
//
// # yamux pitfalls and how this package handles them
//
//   - Half-close: yamux streams have no CloseWrite, but Stream.Close only
//     sends FIN and the stream can still be read until the peer's FIN. The
//     stream wrapper's CloseWrite is therefore Stream.Close, and its Close
//     additionally stops reading (our own blocked Read and Write calls are
//     woken with a past deadline) and releases the stream's slot.
//   - No reset: yamux v0.1.2 has no way to reset a stream except its
//     StreamCloseTimeout, which sends RST when the peer has not answered our
//     FIN in time. A peer that keeps sending to a stream we closed is
//     stopped by that timer (after at most one window of wasted data); the
//     same timer bounds how long a half-closed stream may wait for the
//     peer's last byte, hence the generous default (see Config).
//   - Session loss looks like EOF: yamux makes every stream read io.EOF when
//     the session dies. The wrapper reports ErrSessionClosed instead, so a
//     relay never mistakes a cut connection for a complete one.
//   - Write timeouts: yamux's ConnectionWriteTimeout fails a stream write
//     (and can silently drop a window update, stalling the stream for good)
//     when the underlying connection is slow for a while, and its keepalive
//     kills the whole session when one ping is late. During a bond failover
//     both are normal, and liveness is the bond's job, so keepalive is off
//     and the write timeout is effectively infinite: a dead bond closes its
//     net.Conn, which ends the yamux session.
//   - Memory: each stream buffers at most Config.StreamWindow bytes that its
//     reader has not consumed (yamux's receive window); a session buffers at
//     most StreamWindow × MaxStreams.
//   - Logging: yamux logs to stderr unless told otherwise; here its lines go
//     to the configured slog.Logger.
package mux
