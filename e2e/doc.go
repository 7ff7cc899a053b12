// Package e2e holds black-box tests of the real braid binary: they build
// cmd/braid, run `braid exit` and `braid client` as child processes on
// loopback, and attack them the way the internet and a machine full of
// apps would (malformed SOCKS handshakes, slowloris, probes of the exit,
// SSRF destinations, limit exhaustion, an unread stream, flapping links).
//
// It exists because each package's unit tests see one layer through its
// own API, while the promises in docs/SECURITY.md are about the assembled
// program: its flags, its defaults, what it logs and what a socket on the
// outside sees. The package has no non-test code.
//
// Default `go test ./e2e/` runs the functional checks within a few
// minutes. The heavy parts are gated: `go test -bench Isolation ./e2e/`
// measures throughput isolation, and BRAID_SOAK=1 (duration in
// BRAID_SOAK_DURATION, default 10m) runs the soak test. BRAID_E2E_RACE=1
// builds the binary with -race; BRAID_E2E_MALFORMED and
// BRAID_E2E_SLOWLORIS change the attack sizes (-short shrinks them).
package e2e
