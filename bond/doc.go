// Package bond carries one reliable, ordered byte stream over several
// links at once, so that a single TCP connection gets the sum of several
// uplinks' bandwidth and survives any of them failing.
//
// Striping bytes round-robin over N connections runs the whole stream at
// N × the slowest link and corrupts it when one link dies. bond instead
// numbers every byte, lets each link pull chunks only as fast as it really
// drains, sends each chunk on the link expected to deliver it first,
// acknowledges what arrived on every link, and resends on the survivors
// whatever a stalled or lost link was carrying. The receiver reorders by
// offset and drops duplicates, so the stream loses, repeats and reorders
// nothing.
//
// A link is any net.Conn the caller already dialed and authenticated
// (package link does TLS and the shared-secret proof); bond imports
// nothing of braid's other packages. A Session is a net.Conn.
//
// # Protocol flow
//
//	client                                         exit
//	NewClient; AddLink(conn) ── HELLO{id, new, rcvNext} ──▶ Server.AddLink
//	                         ◀── WELCOME{ok, rcvNext} ──── (new id: Accept)
//	AddLink(conn2)           ── HELLO{id, rcvNext} ──────▶ joins the session
//	                         ◀── WELCOME{ok, rcvNext} ────
//	Write ──▶ DATA{offset, bytes} on whichever link pulls it
//	         ◀── ACK{rcvNext, window edge, bytes received on this link}
//	every link, every 250 ms: PING{token} ──▶ ◀── PONG{token}  (RTT, liveness)
//	CloseWrite ──▶ FIN{final offset}           ◀── ACK{fin acked}
//	Close ──▶ GOAWAY; links closed
//
// Each side's rcvNext in the hello/welcome tells the other how far it has
// received, so a link joining after every other was lost resumes the
// stream exactly where it stopped; the exit answers an id it does not know
// (and that is not new) with "unknown session".
//
// # Frames
//
// Every frame is an 8-byte header and a body; integers are big-endian:
//
//	0       1       2               4                               8
//	+-------+-------+-------+-------+-------+-------+-------+-------+
//	| type  | flags |   reserved    |         body length           |
//	+-------+-------+-------+-------+-------+-------+-------+-------+
//
//	DATA    0x1  offset u64 | payload (1..MaxChunkSize bytes)
//	ACK     0x2  rcvNext u64 | limit u64 | linkRecv u64   flag 0x1: FIN acked
//	PING    0x3  token u64
//	PONG    0x4  token u64
//	FIN     0x5  final offset u64
//	GOAWAY  0x6  code u32
//	HELLO   0x7  magic "brdB" | version u8 | flags u8 | session id [16] | rcvNext u64
//	WELCOME 0x8  version u8 | status u8 | rcvNext u64
//
// The decoder checks a frame's length against its type before reading or
// allocating its body. The wire version (Version) is in every hello.
//
// # Liveness
//
// A link with unacknowledged data and no delivery progress for
// max(MinStallTimeout, srtt + 4·rttvar) is stalled: it is no longer
// scheduled and its unconfirmed bytes are resent at once on the others.
// Progress clears the stall. A link that hears nothing for LinkTimeout is
// closed and its Done channel closes, so the caller can redial. A session
// with no link waits Grace for one to join, then fails with ErrNoLinks.
//
// # Memory
//
// The sender keeps at most SendBuffer unacknowledged bytes (Write blocks
// beyond); the receiver accepts bytes only below the window edge it
// advertised, RecvWindow past what the application has read, so a slow
// reader slows the sender instead of growing buffers.
package bond
