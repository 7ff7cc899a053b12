// Package bench is braid's end-to-end test bed and benchmark suite: real
// braid binaries, kernel MPTCP and plain TCP side by side on shaped links in
// network namespaces (internal/netlab), with the traffic tools to measure
// them.
//
// Why a separate package: the numbers braid claims (aggregation, failover
// time, overhead) only mean something when measured against the kernel's
// own answers on the same links in the same run, and the tools for that
// (payload generator, goodput timelines, failover clock, plots, report) are
// shared by the short CI test and the full suite.
//
// Two modes, selected at run time, not by build tags:
//
//	go test ./bench/                           short CI e2e (< ~60 s), skips without netns
//	go test -run TestSuite ./bench/ -suite     full suite (also BRAID_BENCH=1), writes
//	                                           docs/BENCHMARKS.md and docs/bench/*.png
//
// Suite flags (after the package): -out DIR (default <module>/docs),
// -secs N (seconds per bulk transfer, default 8), -proxy braid|ref (ref is
// an in-process single-link SOCKS stand-in that checks the harness, never
// reported as braid). BRAID_BENCH_CMD sets the command line recorded in the
// report (make bench sets it to "make bench").
//
// Braid plugs in through StartBraid (exit in the exit namespace, client in
// the client namespace, returns the SOCKS address); it finds the binary at
// $BRAID_BIN or <module>/bin/braid. Where it is missing, braid's columns are
// reported as not run, never invented.
package bench
