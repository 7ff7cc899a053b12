package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/egress"
	"github.com/braid-proxy/braid/link"
	"github.com/braid-proxy/braid/mux"
	"github.com/braid-proxy/braid/socks"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// onlyOnExit is a host name that only the exit can resolve: the test's
// exit dialer maps it to the target; the client machine has no such name.
const onlyOnExit = "only-on-exit.test"

type rig struct {
	exit   *exitNode
	client *clientNode
	socks  string
	target string // host:port of the HTTP target on 127.0.0.1
}

// testSecret returns a fresh secret.
func testSecret(t testing.TB) link.Secret {
	s, err := link.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := link.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// startRig runs an exit and a client in process, bonded over nLinks
// loopback links, with an HTTP target. allow opens loopback on the exit.
func startRig(t testing.TB, nLinks int, allow bool, clientSecret, exitSecret link.Secret) *rig {
	t.Helper()
	if clientSecret == nil && exitSecret == nil {
		clientSecret = testSecret(t)
		exitSecret = clientSecret
	}
	log := quietLogger()
	target := startTarget(t)
	_, port, _ := net.SplitHostPort(target)
	lcfg := link.DefaultConfig()
	lcfg.Secret = exitSecret
	lcfg.Logger = log
	bcfg := bond.DefaultConfig()
	bcfg.Logger = log
	mcfg := mux.DefaultConfig()
	mcfg.Logger = log
	ecfg := egress.DefaultConfig()
	if allow {
		ecfg.Policy.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	dialer, err := egress.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, p, _ := net.SplitHostPort(addr); host == onlyOnExit {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	ex, err := startExit(context.Background(), exitOptions{listen: "127.0.0.1:0", link: lcfg, bond: bcfg, mux: mcfg, dial: dial, log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })

	scfg := socks.DefaultConfig()
	scfg.Listen = "127.0.0.1:0"
	scfg.Logger = log
	ccfg := lcfg
	ccfg.Secret = clientSecret
	var specs []linkSpec
	for i := range nLinks {
		specs = append(specs, linkSpec{Name: fmt.Sprintf("lo%d", i), Conns: 1})
	}
	cmcfg := mcfg
	cmcfg.ConnectTimeout = 5 * time.Second
	cl, err := startClient(context.Background(), clientOptions{
		exit: ex.Addr().String(), links: specs, socks: scfg, link: ccfg, bond: bcfg, mux: cmcfg, log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	_ = port
	return &rig{exit: ex, client: cl, socks: cl.SocksAddr().String(), target: target}
}

// startTarget serves GET /bytes/N (N deterministic bytes), POST /sha256
// (the hash of the body) and /close (a server that closes at once).
func startTarget(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		io.Copy(w, io.LimitReader(newPattern(1), int64(n)))
	})
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		fmt.Fprint(w, hex.EncodeToString(h.Sum(nil)))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// pattern is an endless deterministic byte stream.
type pattern struct{ r *rand.ChaCha8 }

func newPattern(seed byte) *pattern { return &pattern{rand.NewChaCha8([32]byte{seed})} }
func (p *pattern) Read(b []byte) (int, error) {
	p.r.Read(b)
	return len(b), nil
}

func patternHash(n int64) string {
	h := sha256.New()
	io.Copy(h, io.LimitReader(newPattern(1), n))
	return hex.EncodeToString(h.Sum(nil))
}

func needCurl(t testing.TB) string {
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (CI installs it: apt-get install curl)")
	}
	return p
}

// curl runs curl through the rig's SOCKS port and returns stdout, stderr
// and the exit code.
func curl(t testing.TB, r *rig, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needCurl(t), append([]string{"-sS", "--max-time", "50", "--socks5-hostname", r.socks}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCurlDownloadUploadByteExact(t *testing.T) {
	r := startRig(t, 3, true, nil, nil)
	const size = 64 << 20
	_, port, _ := net.SplitHostPort(r.target)
	url := fmt.Sprintf("http://%s:%s/bytes/%d", onlyOnExit, port, size)
	out, errs, code := curl(t, r, "-o", "-", url, "-w", "")
	if code != 0 {
		t.Fatalf("curl download: exit %d: %s", code, errs)
	}
	if got := sha256.Sum256([]byte(out)); hex.EncodeToString(got[:]) != patternHash(size) {
		t.Fatalf("download: %d bytes, hash mismatch", len(out))
	}
	body := filepath.Join(t.TempDir(), "up")
	up := make([]byte, 48<<20)
	newPattern(9).Read(up)
	if err := os.WriteFile(body, up, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = curl(t, r, "--data-binary", "@"+body, fmt.Sprintf("http://%s:%s/sha256", onlyOnExit, port))
	want := sha256.Sum256(up)
	if code != 0 || out != hex.EncodeToString(want[:]) {
		t.Fatalf("upload: exit %d, got %q, want %x (%s)", code, out, want, errs)
	}
	// Both directions went over more than one link.
	var used int
	for _, l := range r.client.currentStats().Links {
		if l.BytesSent > 1<<20 && l.BytesRecv > 1<<20 {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("fewer than two links carried the transfer: %+v", r.client.currentStats())
	}
}

// Each reply code the exit can give reaches curl as SOCKS5 reply N.
func TestCurlReplyCodes(t *testing.T) {
	r := startRig(t, 2, false, nil, nil)
	closed := closedPort(t)
	cases := []struct {
		name string
		url  string
		code int
	}{
		{"policy refuses loopback", "http://127.0.0.1:1/", 2},
		{"policy refuses a name resolving to loopback", "http://" + onlyOnExit + ":1/", 2},
		{"policy refuses metadata", "http://169.254.169.254/", 2},
		{"policy refuses decimal loopback", "http://2130706433/", 2},
		{"no such host", "http://no-such-host.invalid/", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs, code := curl(t, r, c.url)
			if code != 97 || !strings.Contains(errs, fmt.Sprintf("(%d)", c.code)) {
				t.Fatalf("curl exit %d, stderr %q; want exit 97 with (%d)", code, errs, c.code)
			}
		})
	}
	// Refused: allowed loopback, closed port.
	r2 := startRig(t, 1, true, nil, nil)
	_, errs, code := curl(t, r2, "http://"+closed+"/")
	if code != 97 || !strings.Contains(errs, "(5)") {
		t.Fatalf("refused: curl exit %d, %q", code, errs)
	}
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A client with the wrong secret gets no tunnel: its CONNECTs fail with a
// general SOCKS failure, and the exit proxies nothing.
func TestWrongSecretGetsNothing(t *testing.T) {
	r := startRig(t, 1, true, testSecret(t), testSecret(t))
	_, port, _ := net.SplitHostPort(r.target)
	_, errs, code := curl(t, r, "--max-time", "10", "http://127.0.0.1:"+port+"/bytes/10")
	if code == 0 {
		t.Fatal("download succeeded with the wrong secret")
	}
	if st := r.exit.bsrv.Sessions(); len(st) != 0 {
		t.Fatalf("exit holds %d sessions for a wrong secret", len(st))
	}
	t.Logf("curl: exit %d, %s", code, strings.TrimSpace(errs))
}

// socksConnect opens a SOCKS5 CONNECT to host:port through proxy with a
// raw client and returns the conn after a success reply.
func socksConnect(t testing.TB, proxy, host string, port int) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	var rep [12]byte // method choice (2) + reply with an IPv4 bound address (10)
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatal(err)
	}
	if rep[1] != 0 || rep[3] != 0 {
		t.Fatalf("SOCKS reply %v", rep)
	}
	c.SetDeadline(time.Time{})
	return c.(*net.TCPConn)
}

// Half-close: the app shuts its write side after the request and still
// receives the whole response, which the target sends only after EOF.
func TestHalfCloseThroughTunnel(t *testing.T) {
	r := startRig(t, 2, true, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c) // until the app's EOF
		sum := h.Sum(nil)
		io.Copy(c, io.LimitReader(newPattern(byte(sum[0])), 8<<20))
		c.Write(sum)
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	c := socksConnect(t, r.socks, onlyOnExit, port)
	defer c.Close()
	req := make([]byte, 3<<20)
	newPattern(3).Read(req)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(req)
	if len(resp) != 8<<20+32 || !bytes.Equal(resp[8<<20:], want[:]) {
		t.Fatalf("response: %d bytes; trailer matches: %v", len(resp), len(resp) >= 32 && bytes.Equal(resp[len(resp)-32:], want[:]))
	}
}
