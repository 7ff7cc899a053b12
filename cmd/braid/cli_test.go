package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/braid-proxy/braid/link"
)

func TestParseLinkSpec(t *testing.T) {
	good := map[string]linkSpec{
		"dev=eth0":                                   {Dev: "eth0", Conns: 1},
		"to=exit.example:7000,conns=3,name=lte":      {To: "exit.example:7000", Conns: 3, Name: "lte"},
		"src=192.168.1.2,backup":                     {Src: netip.MustParseAddr("192.168.1.2"), Conns: 1, Backup: true},
		"src=2001:db8::1,backup=false,to=[::1]:7000": {Src: netip.MustParseAddr("2001:db8::1"), To: "[::1]:7000", Conns: 1},
	}
	for in, want := range good {
		got, err := parseLinkSpec(in)
		if err != nil || got != want {
			t.Errorf("parseLinkSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := []string{"", "dev", "conns=0", "conns=17", "conns=x", "to=nohost", "to=:7000", "to=h:99999",
		"src=not-an-ip", "dev=a/b", "dev=averyveryverylongname", "speed=10", "dev=a,dev=b", "backup=maybe", "name="}
	for _, in := range bad {
		if _, err := parseLinkSpec(in); err == nil {
			t.Errorf("parseLinkSpec(%q) accepted", in)
		}
	}
}

func FuzzParseLinkSpec(f *testing.F) {
	for _, s := range []string{"dev=eth0,conns=2", "to=h:1,src=::1,name=x,backup", "a=b=c", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parseLinkSpec(s)
		if err != nil {
			return
		}
		if sp.Conns < 1 || sp.Conns > maxConnsPerLink {
			t.Fatalf("%q: conns %d accepted", s, sp.Conns)
		}
		if sp.To != "" {
			if _, _, err := net.SplitHostPort(sp.To); err != nil {
				t.Fatalf("%q: to=%q accepted", s, sp.To)
			}
		}
	})
}

func TestKeygenPrintsAParsableSecret(t *testing.T) {
	var out bytes.Buffer
	if err := newApp(&out, &out).Run([]string{"braid", "keygen"}); err != nil {
		t.Fatal(err)
	}
	if _, err := link.ParseSecret(out.String()); err != nil {
		t.Fatalf("keygen printed %q: %v", out.String(), err)
	}
}

// runExitUntilListening runs `braid exit args...` in process, waits until
// addr accepts connections, then stops it and returns its error.
func runExitUntilListening(t *testing.T, addr string, env map[string]string, args ...string) error {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() {
		done <- newApp(&bytes.Buffer{}, &errb).RunContext(ctx, append([]string{"braid", "exit"}, args...))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("exit stopped early: %v\n%s", err, errb.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exit never listened on %s:\n%s", addr, errb.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a port another goroutine opens
	}
	cancel()
	return <-done
}

func writeSecret(t *testing.T) string {
	s, err := link.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Flags come from the YAML file given with --config, and from BRAID_*
// environment variables.
func TestFlagsFromConfigFileAndEnv(t *testing.T) {
	secret := writeSecret(t)
	addr := closedPort(t)
	cfg := filepath.Join(t.TempDir(), "exit.yaml")
	os.WriteFile(cfg, []byte("listen: "+addr+"\nsecret-file: "+secret+"\nallow:\n  - 127.0.0.0/8\nlog-level: warn\n"), 0o600)
	if err := runExitUntilListening(t, addr, nil, "--config", cfg); err != nil {
		t.Fatalf("with --config: %v", err)
	}
	addr = closedPort(t)
	if err := runExitUntilListening(t, addr, map[string]string{"BRAID_LISTEN": addr, "BRAID_SECRET_FILE": secret}); err != nil {
		t.Fatalf("with environment: %v", err)
	}
}

func TestBadFlagsFailClearly(t *testing.T) {
	secret := writeSecret(t)
	cases := map[string][]string{
		"--link":  {"client", "--exit", "h:1", "--secret-file", secret, "--link", "conns=99"},
		"secret":  {"client", "--exit", "h:1", "--secret-file", "/nonexistent"},
		"public":  {"client", "--exit", "h:1", "--secret-file", secret, "--socks", "0.0.0.0:0"},
		"--allow": {"exit", "--listen", "127.0.0.1:0", "--secret-file", secret, "--allow", "nonsense"},
	}
	for name, args := range cases {
		var errb bytes.Buffer
		err := newApp(&bytes.Buffer{}, &errb).Run(append([]string{"braid"}, args...))
		if err == nil {
			t.Errorf("%s: accepted %v", name, args)
			continue
		}
		if !strings.Contains(err.Error(), name) && !strings.Contains(strings.ToLower(err.Error()), name) {
			t.Logf("%s: %v", name, err)
		}
	}
}

// The real binary shuts down cleanly on SIGTERM and SIGINT.
func TestSignalsShutDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "braid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	secret := writeSecret(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin, "exit", "--listen", "127.0.0.1:0", "--secret-file", secret)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() && !strings.Contains(sc.Text(), "listening") {
		}
		cmd.Process.Signal(sig)
		go func() {
			for sc.Scan() {
			}
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: exit status %v", sig, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: still running after 10 s", sig)
		}
	}
}
