//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// Set once by TestMain, read-only afterwards.
var (
	braidBin   string // the built binary
	secretFile string // a shared secret from `braid keygen`, mode 0600
	// adminFlag is true when `braid client --help` lists --admin: then
	// every process gets an admin listener and goroutines are read from
	// its /metrics.
	adminFlag bool
	// raceBinary is true when the binary is built with -race
	// (BRAID_E2E_RACE=1): its memory is then inflated by the race
	// detector's shadow memory, so resident-memory bounds are not checked.
	raceBinary = os.Getenv("BRAID_E2E_RACE") == "1"
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Thousands of sockets per test: take the hard limit (Go raises the
	// soft one for itself since 1.19, but say so explicitly).
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	dir, err := os.MkdirTemp("", "braid-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setup(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// goleak.VerifyTestMain would exit before the deferred cleanup.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutine leak:", err)
			code = 1
		}
	}
	return code
}

// setup builds the binary (once per test binary) and makes a secret.
func setup(dir string) error {
	braidBin = filepath.Join(dir, "braid")
	args := []string{"build", "-o", braidBin}
	if raceBinary {
		args = append(args, "-race")
	}
	args = append(args, "github.com/braid-proxy/braid/cmd/braid")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	out, err := exec.Command(braidBin, "keygen").Output()
	if err != nil {
		return fmt.Errorf("braid keygen: %w", err)
	}
	secretFile = filepath.Join(dir, "braid.key")
	if err := os.WriteFile(secretFile, bytes.TrimSpace(out), 0o600); err != nil {
		return err
	}
	help, _ := exec.Command(braidBin, "client", "--help").CombinedOutput()
	adminFlag = strings.Contains(string(help), "--admin")
	return nil
}
