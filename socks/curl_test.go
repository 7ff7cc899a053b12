package socks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const curlPath = "/usr/bin/curl"

// exitName exists only at the (fake) exit: nothing on this machine resolves
// it, so the request can only succeed if the name reaches the Dialer.
const exitName = "only-on-exit.test"

type curlResult struct {
	stdout, stderr []byte
	exit           int
}

// runCurl runs curl with no config file, no proxy environment and a hard
// time limit.
func runCurl(t *testing.T, args ...string) curlResult {
	t.Helper()
	if _, err := exec.LookPath(curlPath); err != nil {
		t.Skipf("curl not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	full := append([]string{"-q", "--silent", "--show-error", "--max-time", "8"}, args...)
	cmd := exec.CommandContext(ctx, curlPath, full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := curlResult{stdout: out.Bytes(), stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	default:
		t.Fatalf("curl: %v", err)
	}
	return res
}

// httpServer serves body on 127.0.0.1 and returns its port.
func httpServer(t *testing.T, body []byte) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	t.Cleanup(hs.Close)
	_, port, err := net.SplitHostPort(hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestCurlHostnameReachesDialerUnresolved(t *testing.T) {
	body := randomBytes(3<<20, 7)
	port := httpServer(t, body)
	want := net.JoinHostPort(exitName, port)
	d := &dialRecorder{routes: map[string]string{want: "127.0.0.1:" + port}}
	_, proxy := startServer(t, testConfig(), d.dial)

	res := runCurl(t, "--socks5-hostname", proxy, fmt.Sprintf("http://%s:%s/file", exitName, port))
	if res.exit != 0 {
		t.Fatalf("curl exit %d: %s", res.exit, res.stderr)
	}
	if sha256.Sum256(res.stdout) != sum(body) {
		t.Fatalf("body through proxy differs: %d bytes, want %d", len(res.stdout), len(body))
	}
	if got := d.requested(); !slices.Equal(got, []string{want}) {
		t.Fatalf("dialer asked for %q, want exactly [%q]", got, want)
	}
}

func TestCurlReplyCodes(t *testing.T) {
	for code := byte(1); code <= 6; code++ {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			d := &dialRecorder{err: fmt.Errorf("wrapped: %w", codeError(code))}
			s, proxy := startServer(t, testConfig(), d.dial)
			res := runCurl(t, "--socks5-hostname", proxy, "http://"+exitName+":8080/")
			// curl 7.88 names the reply code in this message (exit 97 is
			// CURLE_PROXY).
			wantMsg := fmt.Sprintf("curl: (97) Can't complete SOCKS5 connection to %s. (%d)", exitName, code)
			if !strings.Contains(string(res.stderr), wantMsg) {
				t.Errorf("curl stderr %q does not contain %q", res.stderr, wantMsg)
			}
			if res.exit != 97 { // CURLE_PROXY
				t.Errorf("curl exit %d, want 97", res.exit)
			}
			if got := s.Stats().Replies[code]; got != 1 {
				t.Errorf("Stats().Replies[%d] = %d, want 1", code, got)
			}
			if got := d.requested(); !slices.Equal(got, []string{exitName + ":8080"}) {
				t.Errorf("dialer asked for %q", got)
			}
		})
	}
}
