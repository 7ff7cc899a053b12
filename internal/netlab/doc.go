// Package netlab builds a throw-away two-namespace network for braid's
// end-to-end tests and benchmarks.
//
// Unit tests of bond/ run over in-memory fake links; they cannot show what
// the real kernel does to a bonded stream: TCP congestion control on a shaped
// path, a link that silently drops everything, an interface that goes down.
// netlab gives the e2e tests and the benchmark suite that real network,
// entirely inside network namespaces the test creates itself, so no packet
// ever leaves the machine.
//
// Topology of one Lab (i = 0..N-1):
//
//	namespace "client"                      namespace "exit"
//	c<i> 10.200.i.1/24  <--- veth i --->  e<i> 10.200.i.2/24
//	tbf RateMbit egress                     tbf RateMbit egress
//	                                        lo: 10.200.255.1/32 (TargetIP)
//
// The 10.200.0.0/16 addresses exist only inside the lab's namespaces. The
// client namespace routes TargetIP over every link (main table, metric 100+i,
// so link 0 is preferred and the next one takes over when a link is down),
// and source-based rules send packets from 10.200.i.1 over link i, which is
// what kernel MPTCP subflows and braid's per-link dialers need.
//
// Faults:
//   - Blackhole drops every packet arriving over the link in both namespaces
//     (nft input hook). Neither TCP stack gets a local error or a RST: it looks
//     like a remote loss. (A drop on the output hook would hand the sender a
//     local EPERM and make TCP retry without backoff, which is not what a dead
//     uplink does.)
//   - SetDown sets the client end down, so both ends lose carrier; SetDown
//     (false) brings it up and restores the link's routes.
//
// Shaping: tbf on both ends of every veth with rate RateMbit, a burst sized
// for the rate and a queue limit of QueueMs of data plus the burst, so the
// shaper does not add bufferbloat.
//
// Delay: the kernel here has no netem, so a link's DelayMs is added by a
// userspace relay built from toxiproxy's latency toxic. The relay runs in
// the exit namespace, listens on the link's exit address and forwards to a
// port in the exit namespace; Link.Endpoint returns the address to dial. It
// delays bytes by DelayMs in each direction (RTT grows by 2×DelayMs) but,
// being a TCP relay, it terminates TCP: the client's TCP sees the short veth
// RTT and the relay buffers up to one bandwidth-delay product. It therefore
// cannot delay kernel MPTCP (which needs end-to-end subflows); MPTCP runs see
// the links without added delay.
//
// Cleanup: namespaces are named "<prefix>-<pid>-<n>-client|exit". Close
// kills the processes started with Run, stops relays and deletes both
// namespaces; New first sweeps namespaces of the same prefix whose pid is
// dead (left by a crashed run). Use NewForTest in tests: it skips with a
// clear message where the machine cannot create namespaces and registers
// Close with t.Cleanup, so a failing test still cleans up.
package netlab
