package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braid-proxy/braid/admin"
	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/link"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// opsApp is an app with only the operator commands, so these tests do not
// depend on how main.go lists them.
func opsApp(stdout, stderr io.Writer) *cli.App {
	// DisableSliceFlagSeparator as main must set it: a --link SPEC has commas.
	return &cli.App{Name: "braid", Writer: stdout, ErrWriter: stderr, EnableBashCompletion: true, DisableSliceFlagSeparator: true, Commands: opsCommands()}
}

func runOps(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := opsApp(&out, &errb).RunContext(context.Background(), append([]string{"braid"}, args...))
	return out.String(), err
}

func checkGolden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// loadWith runs cmd with --config file and returns the flag values the
// command would have seen, without running it. The admin flags are added
// if main has not wired them yet, so the test checks the keys init writes
// either way.
func loadWith(t *testing.T, cmd *cli.Command, file string, names ...string) map[string]any {
	t.Helper()
	if !slices.ContainsFunc(cmd.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "admin") }) {
		cmd.Flags = append(cmd.Flags, adminFlags()...)
	}
	got := map[string]any{}
	cmd.Action = func(c *cli.Context) error {
		for _, n := range names {
			if v := c.StringSlice(n); v != nil && (n == "link" || n == "allow") {
				got[n] = v
				continue
			}
			got[n] = c.Value(n)
		}
		return nil
	}
	app := &cli.App{Name: "braid", Writer: io.Discard, ErrWriter: io.Discard, DisableSliceFlagSeparator: true, Commands: []*cli.Command{cmd}}
	if err := app.Run([]string{"braid", cmd.Name, "--config", file}); err != nil {
		t.Fatalf("braid %s --config %s: %v", cmd.Name, file, err)
	}
	return got
}

func TestInitWritesMatchingPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pair")
	keyPath := filepath.Join(t.TempDir(), "etc", "braid.key")
	out, err := runOps(t, "init", "--exit", "vps.example.com:7443", "--dir", dir, "--secret-path", keyPath,
		"--link", "dev=eth0,name=dsl", "--link", "src=10.64.0.5,name=lte,backup", "--admin", "127.0.0.1:9090")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fresh secret") {
		t.Errorf("init said %q", out)
	}
	if m := fileMode(t, filepath.Join(dir, "braid.key")); m != 0o600 {
		t.Errorf("braid.key mode %#o, want 0600", m)
	}
	for _, f := range []string{"exit.yaml", "client.yaml"} {
		if m := fileMode(t, filepath.Join(dir, f)); m != 0o644 {
			t.Errorf("%s mode %#o, want 0644 (it holds no secret)", f, m)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "braid.key"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := link.ParseSecret(string(raw))
	if err != nil || len(secret) != link.SecretSize {
		t.Fatalf("braid.key: %v", err)
	}

	// Both files are YAML and name the same secret file.
	docs := map[string]map[string]any{}
	for _, f := range []string{"exit.yaml", "client.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s is not YAML: %v\n%s", f, err, b)
		}
		if strings.Contains(string(b), strings.TrimSpace(string(raw))) {
			t.Errorf("%s contains the secret itself", f)
		}
		docs[f] = m
	}
	ex, cl := docs["exit.yaml"], docs["client.yaml"]
	if ex["secret-file"] != keyPath || cl["secret-file"] != keyPath {
		t.Errorf("secret-file: exit %v, client %v, want %s in both", ex["secret-file"], cl["secret-file"], keyPath)
	}
	if ex["listen"] != "0.0.0.0:7443" || cl["exit"] != "vps.example.com:7443" || cl["socks"] != "127.0.0.1:1080" {
		t.Errorf("exit %v client %v", ex, cl)
	}
	if ex["admin"] != "127.0.0.1:9090" || cl["admin"] != "127.0.0.1:9090" {
		t.Errorf("admin: exit %v client %v", ex["admin"], cl["admin"])
	}

	// The real commands read the files: every key is one of their flags.
	// Install the secret where the configs say it lives.
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	if err := os.WriteFile(keyPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ev := loadWith(t, exitCommand(), filepath.Join(dir, "exit.yaml"), "listen", "secret-file", "admin", "log-level")
	cv := loadWith(t, clientCommand(), filepath.Join(dir, "client.yaml"), "exit", "secret-file", "socks", "link", "admin")
	if ev["listen"] != "0.0.0.0:7443" || ev["secret-file"] != keyPath || ev["admin"] != "127.0.0.1:9090" || ev["log-level"] != "info" {
		t.Errorf("braid exit --config sees %v", ev)
	}
	if cv["exit"] != "vps.example.com:7443" || cv["secret-file"] != keyPath || cv["admin"] != "127.0.0.1:9090" ||
		!slices.Equal(cv["link"].([]string), []string{"dev=eth0,name=dsl", "src=10.64.0.5,name=lte,backup"}) {
		t.Errorf("braid client --config sees %v", cv)
	}
	s1, warn, err := link.LoadSecret(ev["secret-file"].(string))
	if err != nil || warn != nil {
		t.Fatalf("exit's secret: %v, %v", err, warn)
	}
	s2, _, err := link.LoadSecret(cv["secret-file"].(string))
	if err != nil || !bytes.Equal(s1, s2) || !bytes.Equal(s1, secret) {
		t.Error("exit and client load different secrets")
	}
}

func TestInitDefaultsAndOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := runOps(t, "init", "--exit", "[2001:db8::1]:7000", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var ex, cl map[string]any
	if err := yaml.Unmarshal([]byte(read("exit.yaml")), &ex); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(read("client.yaml")), &cl); err != nil {
		t.Fatal(err)
	}
	if ex["listen"] != "[::]:7000" || ex["secret-file"] != "/etc/braid/braid.key" || cl["links"] != 2 || cl["link"] != nil {
		t.Errorf("defaults: exit %v client %v", ex, cl)
	}
	if _, ok := ex["admin"]; ok {
		t.Error("admin enabled without --admin")
	}

	key := read("braid.key")
	if _, err := runOps(t, "init", "--exit", "h:1", "--dir", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init: %v, want a refusal", err)
	}
	if read("braid.key") != key {
		t.Fatal("refused init still changed the secret")
	}
	os.Chmod(filepath.Join(dir, "braid.key"), 0o644)
	if _, err := runOps(t, "init", "--exit", "h:1", "--dir", dir, "--force"); err != nil {
		t.Fatal(err)
	}
	if read("braid.key") == key {
		t.Error("--force kept the old secret")
	}
	if m := fileMode(t, filepath.Join(dir, "braid.key")); m != 0o600 {
		t.Errorf("after --force over a 0644 file: mode %#o, want 0600", m)
	}
}

func TestInitRejects(t *testing.T) {
	for name, args := range map[string][]string{
		"no port":         {"--exit", "vps.example.com"},
		"bad port":        {"--exit", "h:0"},
		"public admin":    {"--exit", "h:1", "--admin", "0.0.0.0:9090"},
		"relative secret": {"--exit", "h:1", "--secret-path", "braid.key"},
		"bad link":        {"--exit", "h:1", "--link", "conns=99"},
		"bad links":       {"--exit", "h:1", "--links", "0"},
		"argument":        {"--exit", "h:1", "extra"},
	} {
		dir := t.TempDir()
		if _, err := runOps(t, append([]string{"init", "--dir", dir}, args...)...); err == nil {
			t.Errorf("%s: init accepted %v", name, args)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: refused init wrote %d files", name, len(entries))
		}
	}
}

var routesArgs = []string{"routes",
	"--iface", "eth0=192.168.1.2/24,gw=192.168.1.1,name=dsl",
	"--iface", "wwan0=10.64.0.5",
	"--iface", "eth1=2001:db8:1::10/64,gw=2001:db8:1::1,table=200",
}

func TestRoutesGolden(t *testing.T) {
	out, err := runOps(t, routesArgs...)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "routes", out)
}

// TestRoutesScriptRunsInNamespace runs the printed commands with the real
// ip(8) in a network namespace of its own, on dummy interfaces, and checks
// the kernel's routing tables and rules — then runs them again to show
// they are idempotent.
func TestRoutesScriptRunsInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"unshare", "ip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	script, err := runOps(t, routesArgs...)
	if err != nil {
		t.Fatal(err)
	}
	setup := `set -e
ip link set lo up
for i in eth0 wwan0 eth1; do ip link add $i type veth peer name $i-p; ip link set $i up; ip link set $i-p up; done
ip addr add 192.168.1.2/24 dev eth0
ip addr add 10.64.0.5/30 dev wwan0
ip -6 addr add 2001:db8:1::10/64 dev eth1 nodad
`
	check := `
echo ==rules; ip rule show; ip -6 rule show
echo ==t100; ip route show table 100
echo ==t101; ip route show table 101
echo ==t200; ip -6 route show table 200
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "sh", "-c", setup+script+script+check)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "unshare failed") {
			t.Skipf("no network namespaces here: %s", out)
		}
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"100:\tfrom 192.168.1.2 lookup 100",
		"100:\tfrom all oif eth0 lookup 100",
		"101:\tfrom 10.64.0.5 lookup 101",
		"101:\tfrom all oif wwan0 lookup 101",
		"200:\tfrom 2001:db8:1::10 lookup 200",
		"default via 192.168.1.1 dev eth0 src 192.168.1.2",
		"192.168.1.0/24 dev eth0 scope link src 192.168.1.2",
		"default dev wwan0 scope link src 10.64.0.5",
		"default via 2001:db8:1::1 dev eth1 src 2001:db8:1::10",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("namespace lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "from 192.168.1.2 lookup 100"); n != 1 {
		t.Errorf("rule present %d times after running the script twice, want 1", n)
	}
}

func TestParseUplink(t *testing.T) {
	good := map[string]uplink{
		"eth0=192.168.1.2/24,gw=192.168.1.1": {Iface: "eth0", Name: "eth0", Table: 7,
			Src: netip.MustParseAddr("192.168.1.2"), Prefix: netip.MustParsePrefix("192.168.1.0/24"), GW: netip.MustParseAddr("192.168.1.1")},
		"wwan0=10.0.0.9,table=300,name=lte": {Iface: "wwan0", Name: "lte", Table: 300, Src: netip.MustParseAddr("10.0.0.9")},
		"ppp0=::ffff:100.64.1.1":            {Iface: "ppp0", Name: "ppp0", Table: 7, Src: netip.MustParseAddr("100.64.1.1")},
	}
	for in, want := range good {
		if got, err := parseUplink(in, 7); err != nil || got != want {
			t.Errorf("parseUplink(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "eth0", "eth0=", "eth0=nope", "=1.2.3.4", "a;rm -rf=1.2.3.4", "averyveryverylongname=1.2.3.4",
		"-x=1.2.3.4", "eth0=127.0.0.1", "eth0=0.0.0.0", "eth0=224.0.0.1", "eth0=1.2.3.4/33",
		"eth0=1.2.3.4,gw=2001:db8::1", "eth0=1.2.3.4,gw=x", "eth0=1.2.3.4,table=254", "eth0=1.2.3.4,table=0",
		"eth0=1.2.3.4,table=x", "eth0=1.2.3.4,name=a b", "eth0=1.2.3.4,name=$(id)", "eth0=1.2.3.4,mtu=1",
		"eth0=1.2.3.4,gw", "eth0=1.2.3.4,gw=1.2.3.1,gw=1.2.3.2", "eth0=fe80::1%eth0",
	} {
		if u, err := parseUplink(in, 7); err == nil {
			t.Errorf("parseUplink(%q) accepted: %+v", in, u)
		}
	}
	if _, err := runOps(t, "routes", "--iface", "a=1.2.3.4", "--iface", "b=1.2.3.4"); !errors.Is(err, errDuplicate) {
		t.Errorf("same source twice: %v", err)
	}
	if _, err := runOps(t, "routes", "--iface", "a=1.2.3.4,table=9", "--iface", "b=1.2.3.5,table=9"); !errors.Is(err, errDuplicate) {
		t.Errorf("same table twice: %v", err)
	}
}

func FuzzParseUplink(f *testing.F) {
	for _, s := range []string{"eth0=192.168.1.2/24,gw=192.168.1.1", "wwan0=10.0.0.9,table=300,name=lte", "e=::1", "x=1.2.3.4,,", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUplink(s, 100)
		if err != nil {
			return
		}
		script, err := routesScript([]uplink{u})
		if err != nil {
			t.Fatal(err)
		}
		// Every command line is plain words: nothing the shell would expand.
		for _, line := range strings.Split(script, "\n") {
			if strings.HasPrefix(line, "#") || line == "" {
				continue
			}
			cmd := strings.TrimSuffix(line, " 2>/dev/null || true")
			if strings.ContainsAny(cmd, "$`;&|<>(){}\"'\\*?[]!~\t") {
				t.Fatalf("%q produced an unsafe line %q", s, line)
			}
		}
		if !strings.Contains(script, "--link src="+u.Src.String()+",name="+u.Name) {
			t.Fatalf("%q: no matching --link in\n%s", s, script)
		}
	})
}

// statusServer serves a real admin handler for a fake client.
func statusServer(t *testing.T) *httptest.Server {
	t.Helper()
	src := admin.SourceFunc(func() admin.Snapshot {
		return admin.Snapshot{
			Role: admin.RoleClient,
			Sessions: []admin.SessionSnapshot{{ID: "0011223344556677", Links: []bond.LinkStats{
				{Name: "dsl", State: bond.LinkUp, SRTT: 20 * time.Millisecond},
				{Name: "lte", State: bond.LinkStalled, SRTT: 90 * time.Millisecond, Stalls: 1},
			}}},
			Redials: map[string]uint64{"dsl": 0, "lte": 3, "wifi": 1},
			Addrs:   map[string]string{"dsl": "dev=eth0 → vps:7000"},
		}
	})
	h := admin.NewHandler(src, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })
	return srv
}

func TestStatusCommand(t *testing.T) {
	srv := statusServer(t)
	out, err := runOps(t, "status", "--admin", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"braid client: 1 session, links 1 up, 1 stalled, 1 down", "LINK", "dsl", "dev=eth0 → vps:7000", "lte", "stalled", "wifi", "down"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	out, err = runOps(t, "status", "--admin", srv.URL, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Links []struct{ Name, State string } `json:"links"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Links) != 3 || doc.Links[2].Name != "wifi" || doc.Links[2].State != "down" {
		t.Errorf("--json: %v %+v\n%s", err, doc, out)
	}
	if _, err := runOps(t, "status", "--admin", closedPort(t)); err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Errorf("status against nothing: %v, want a hint about --admin", err)
	}
}

// cancelAfter is a writer that cancels a context once it has seen n
// occurrences of marker.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), w.marker) >= w.n {
		w.cancel()
	}
	return len(p), nil
}

func TestStatusWatch(t *testing.T) {
	srv := statusServer(t)
	for _, mode := range []struct {
		args   []string
		marker string
	}{
		{[]string{"--watch", "--interval", "100ms"}, "LINK "},
		{[]string{"-w", "--json", "--interval", "100ms"}, "\n"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w := &cancelAfter{marker: mode.marker, n: 2, cancel: cancel}
		args := append([]string{"braid", "status", "--admin", srv.URL}, mode.args...)
		if err := opsApp(w, io.Discard).RunContext(ctx, args); err != nil {
			t.Fatalf("%v: %v", mode.args, err)
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("%v: never refreshed twice:\n%s", mode.args, w.buf.String())
		}
		cancel()
		out := w.buf.String()
		if mode.marker == "\n" {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var st admin.Status
				if err := json.Unmarshal([]byte(line), &st); err != nil || len(st.Links) != 3 {
					t.Errorf("--watch --json line %q: %v", line, err)
				}
			}
		} else if !strings.Contains(out, "\x1b[H\x1b[2J") {
			t.Errorf("--watch does not clear the screen")
		}
	}
}

func TestStartAdmin(t *testing.T) {
	src := admin.SourceFunc(func() admin.Snapshot {
		return admin.Snapshot{Role: admin.RoleExit, Sessions: []admin.SessionSnapshot{{ID: "ab", Links: []bond.LinkStats{{Name: "192.0.2.1:5555", State: bond.LinkUp}}}}}
	})
	run := func(args ...string) (addr string, stop func(), err error) {
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, nil))
		app := &cli.App{Name: "braid", Writer: io.Discard, ErrWriter: io.Discard, Commands: []*cli.Command{{
			Name: "exit", Flags: adminFlags(),
			Action: func(c *cli.Context) error {
				stop, err = startAdmin(c, src, log)
				return err
			},
		}}}
		if rerr := app.Run(append([]string{"braid", "exit"}, args...)); rerr != nil {
			return "", nil, rerr
		}
		var rec struct{ Addr string }
		json.Unmarshal(logs.Bytes(), &rec)
		return rec.Addr, stop, nil
	}

	if _, stop, err := run(); err != nil {
		t.Fatal(err)
	} else {
		stop() // nothing started: a no-op
	}
	if _, _, err := run("--admin", "0.0.0.0:0"); !errors.Is(err, admin.ErrPublicAddr) {
		t.Errorf("public --admin: %v, want ErrPublicAddr", err)
	}
	addr, stop, err := run("--admin", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `braid_link_up{link="192.0.2.1:5555",role="exit"} 1`) {
		t.Errorf("/metrics:\n%s", body)
	}
	stop()
	stop()
	if _, err := hc.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("admin listener still answers after stop")
	}
}

func TestLinkAddr(t *testing.T) {
	for want, sp := range map[string]linkSpec{
		"dev=wwan0 → vps:7000":                {Dev: "wwan0"},
		"src=192.0.2.1 → other:1":             {Src: netip.MustParseAddr("192.0.2.1"), To: "other:1"},
		"dev=eth0 src=2001:db8::1 → vps:7000": {Dev: "eth0", Src: netip.MustParseAddr("2001:db8::1")},
		"default route → vps:7000":            {},
	} {
		if got := linkAddr(sp, "vps:7000"); got != want {
			t.Errorf("linkAddr(%+v) = %q, want %q", sp, got, want)
		}
	}
}

func TestCompletion(t *testing.T) {
	bash, err := runOps(t, "completion", "bash")
	if err != nil || !strings.Contains(bash, "complete -o bashdefault -o default -F _braid_complete braid") {
		t.Fatalf("bash script: %v\n%s", err, bash)
	}
	zsh, err := runOps(t, "completion", "zsh")
	if err != nil || !strings.HasPrefix(zsh, "#compdef braid") {
		t.Fatalf("zsh script: %v\n%s", err, zsh)
	}
	if _, err := runOps(t, "completion", "fish"); err == nil {
		t.Error("completion fish accepted")
	}
	// urfave/cli answers the scripts' question with the commands. It
	// looks at os.Args for the word before the flag, so set them as a
	// shell would.
	defer func(args []string) { os.Args = args }(os.Args)
	os.Args = []string{"braid", "--generate-bash-completion"}
	out, err := runOps(t, "--generate-bash-completion")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"status", "init", "routes", "completion"} {
		if !slices.Contains(strings.Fields(out), c) {
			t.Errorf("completion candidates %q lack %q", out, c)
		}
	}
	// Run the bash function against a stand-in braid that records what it
	// was asked and offers two words.
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	prog := bash + `
braid() { printf '%s ' "$@" > "$ASKED"; printf 'status\nstats-only\nroutes\n'; }
COMP_WORDS=(braid st); COMP_CWORD=1; _braid_complete; echo "one:${COMPREPLY[*]}"
COMP_WORDS=(braid status --wa); COMP_CWORD=2; _braid_complete; echo "asked:$(cat "$ASKED")"
`
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Env = append(os.Environ(), "ASKED="+filepath.Join(t.TempDir(), "asked"))
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, res)
	}
	if !strings.Contains(string(res), "one:status stats-only\n") || !strings.Contains(string(res), "asked:status --wa --generate-bash-completion ") {
		t.Errorf("bash completion ran as:\n%s", res)
	}
	if _, err := exec.LookPath("zsh"); err == nil {
		if res, err := exec.Command("zsh", "-n", "-c", zsh).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, res)
		}
	}
}

// TestDeployConfigsUseFlagNames checks that every key of the example
// configurations in deploy/ is a flag of the command that reads it (the
// YAML loader ignores unknown keys, so a typo would pass unnoticed), and
// that their link specs parse.
func TestDeployConfigsUseFlagNames(t *testing.T) {
	for file, cmd := range map[string]*cli.Command{
		"../../deploy/exit.yaml":   exitCommand(),
		"../../deploy/client.yaml": clientCommand(),
	} {
		if !slices.ContainsFunc(cmd.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "admin") }) {
			cmd.Flags = append(cmd.Flags, adminFlags()...)
		}
		flags := map[string]bool{}
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				flags[n] = true
			}
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var keys []string
		for k := range doc {
			if !flags[k] {
				t.Errorf("%s: key %q is not a flag of braid %s", file, k, cmd.Name)
			}
			keys = append(keys, k)
		}
		got := loadWith(t, cmd, file, keys...)
		if links, ok := got["link"].([]string); ok {
			for _, l := range links {
				if _, err := parseLinkSpec(l); err != nil {
					t.Errorf("%s: %v", file, err)
				}
			}
			if len(links) != 3 {
				t.Errorf("%s: links %q, want the 3 examples", file, links)
			}
		}
	}
}

// TestGuideMatchesRoutes checks that the commands quoted in
// deploy/MULTI-UPLINK.md are what `braid routes` prints for its example.
func TestGuideMatchesRoutes(t *testing.T) {
	guide, err := os.ReadFile("../../deploy/MULTI-UPLINK.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runOps(t, "routes", "--iface", "eth0=192.168.1.2/24,gw=192.168.1.1,name=dsl", "--iface", "wwan0=10.64.0.5,name=lte")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), "--iface eth0=192.168.1.2/24,gw=192.168.1.1,name=dsl") {
		t.Fatal("the guide's example invocation changed; update this test")
	}
	n := 0
	for _, line := range strings.Split(string(guide), "\n") {
		if strings.HasPrefix(line, "ip rule ") || strings.HasPrefix(line, "ip route ") || strings.HasPrefix(line, "#   --link ") {
			n++
			if !strings.Contains(out, line+"\n") {
				t.Errorf("the guide shows %q, braid routes does not print it", line)
			}
		}
	}
	if n < 6 {
		t.Errorf("found %d quoted commands in the guide", n)
	}
}
