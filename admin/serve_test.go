package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090":        true,
		"127.8.9.10:9090":       true,
		"[::1]:9090":            true,
		"[::ffff:127.0.0.1]:90": true,
		"localhost:9090":        true,
		":9090":                 false,
		"0.0.0.0:9090":          false,
		"[::]:9090":             false,
		"192.168.1.1:9090":      false,
		"example.com:9090":      false,
		"127.0.0.1":             false, // no port
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestListenPolicy(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		if ln, err := Listen(addr, false); !errors.Is(err, ErrPublicAddr) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("Listen(%q, false) = %v, want ErrPublicAddr", addr, err)
		}
	}
	// Allowed, a public address is attempted: this one is not on the
	// machine, so the bind itself fails (nothing is sent anywhere).
	if ln, err := Listen("192.0.2.1:0", true); err == nil || errors.Is(err, ErrPublicAddr) {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("Listen(TEST-NET, true) = %v, want a bind error", err)
	}
	if _, err := Listen("nonsense", false); err == nil {
		t.Error("Listen accepted an address without a port")
	}
	if err := Serve(context.Background(), "0.0.0.0:0", http.NotFoundHandler()); !errors.Is(err, ErrPublicAddr) {
		t.Errorf("Serve(public) = %v", err)
	}
}

// TestServeListener serves the real handler on loopback, reads every
// endpoint over TCP, and shuts down when the context ends.
func TestServeListener(t *testing.T) {
	h, err := New(withSource(&fakeSource{snap: clientSnapshot()}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ServeListener(ctx, ln, h) }()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for path, want := range map[string]string{
		"/":             `<script src="app.js" defer></script>`,
		"/app.js":       "status.json",
		"/style.css":    ".state-up",
		"/metrics":      `braid_link_up{link="eth0",role="client"} 1`,
		"/status.json":  `"name": "wwan0"`,
		"/history.json": `"samples"`,
	} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
	}
	if resp, _ := get("/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope: %d", resp.StatusCode)
	}
	if resp, err := hc.Post("http://"+addr+"/status.json", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	st, raw, err := FetchStatus(context.Background(), hc, addr)
	if err != nil || st.Role != RoleClient || len(st.Links) != 3 || !strings.Contains(string(raw), `"links"`) {
		t.Errorf("FetchStatus: %+v %v", st, err)
	}

	cancel()
	if err := <-errc; err != nil {
		t.Errorf("ServeListener after cancel: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("listener still open after shutdown")
	}
}

func TestFetchStatusErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/notbraid/status.json":
			io.WriteString(w, `{"hello": "world"}`)
		case "/garbage/status.json":
			io.WriteString(w, `{"role": `)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hc := srv.Client()
	for _, addr := range []string{srv.URL + "/notbraid", srv.URL + "/garbage", srv.URL + "/missing", "not an address", "ftp://x:1"} {
		if _, _, err := FetchStatus(context.Background(), hc, addr); !errors.Is(err, ErrStatus) {
			t.Errorf("FetchStatus(%q) = %v, want ErrStatus", addr, err)
		}
	}
}

func TestStatusURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9090":               "http://127.0.0.1:9090/status.json",
		" [::1]:9090 ":                 "http://[::1]:9090/status.json",
		"http://router.lan:9090":       "http://router.lan:9090/status.json",
		"https://h.example/braid/?x#y": "https://h.example/braid/status.json",
	} {
		if got, err := StatusURL(in); err != nil || got != want {
			t.Errorf("StatusURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "9090", "file:///etc/passwd", "http://", strings.Repeat("a", 3000) + ":1"} {
		if got, err := StatusURL(in); err == nil {
			t.Errorf("StatusURL(%q) = %q, want an error", in, got)
		}
	}
}
