// Package bondtest provides in-memory fake uplinks for the bond package's
// unit tests and in-process benchmarks.
//
// bond spreads one byte stream over several links and reacts to how each
// link behaves: its rate, its round-trip time, back-pressure when its send
// queue fills, stalls, silent loss and resets. Loopback TCP cannot be shaped
// from a unit test and network namespaces need privileges, so this package
// emulates a TCP connection with a simple, exact timing model instead:
//
//   - A Write is cut into segments of at most 16 KiB. Each segment is
//     serialised at the link rate, back to back:
//     txStart = max(now, previous txEnd), txEnd = txStart + len/Rate,
//     and becomes readable at deliverAt = txEnd + Delay.
//   - Write blocks while the bytes not yet transmitted would exceed
//     QueueBytes (the kernel's unsent queue, TCP_NOTSENT_LOWAT) or while the
//     bytes written but not yet read would exceed RecvBuffer (the peer's
//     socket buffer and window).
//   - Block freezes the link's clock: nothing is transmitted or delivered and
//     writers fill the queue and wait; Unblock resumes exactly where it
//     stopped, every pending event shifted by the time spent blocked.
//   - Blackhole freezes the clock forever and drops everything not yet
//     delivered, like a TCP peer that stopped acknowledging: writes are
//     accepted until the queue is full, then block until Close.
//
// Nothing here starts a goroutine: waits use time.Timer and channels created
// by the calling goroutine, so a Link works in real time (accurate to the
// runtime's timer resolution, cheap on CPU) and inside a testing/synctest
// bubble with fake time, where every timing is exact. Create a Link in the
// bubble that uses it: its clock starts at time.Now.
//
// On a loaded machine a writer woken late by the scheduler can let a fast
// link idle, as a real application would; real-time benchmarks of fast
// links may want a QueueBytes worth a few milliseconds or more.
package bondtest
