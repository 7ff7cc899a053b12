package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/braid-proxy/braid/admin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var units = []string{"systemd/braid-exit.service", "systemd/braid-client.service"}

// directives parses a unit file into key -> values (a key may repeat).
func directives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key=value", path, line)
		}
		d[k] = append(d[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUnitsHardened checks the directives the hardening rests on, so a
// later edit cannot silently drop one.
func TestUnitsHardened(t *testing.T) {
	for _, u := range units {
		d := directives(t, u)
		role := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(u), "braid-"), ".service")
		want := map[string]string{
			"DynamicUser":             "yes",
			"ProtectSystem":           "strict",
			"NoNewPrivileges":         "yes",
			"CapabilityBoundingSet":   "", // no capabilities at all
			"AmbientCapabilities":     "",
			"ProtectHome":             "yes",
			"PrivateTmp":              "yes",
			"PrivateDevices":          "yes",
			"MemoryDenyWriteExecute":  "yes",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
			"LoadCredential":          "secret:/etc/braid/braid.key",
			"Environment":             "BRAID_SECRET_FILE=%d/secret",
			"ExecStart":               "/usr/local/bin/braid " + role + " --config /etc/braid/" + role + ".yaml",
			"Restart":                 "on-failure",
		}
		for k, v := range want {
			got := d[k]
			if len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s=%q, want exactly %q", u, k, got, v)
			}
		}
	}
}

// TestUnitsVerify runs systemd-analyze on the units (with ExecStart
// pointing at a stand-in binary, since verify checks it exists) and holds
// the exposure score at "OK".
func TestUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: unit verification skipped")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "braid")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/braid", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, sa, append([]string{"verify"}, paths...)...).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, p := range paths {
		// --threshold is the exposure level × 10; 15 is well inside "OK".
		out, err := exec.CommandContext(ctx, sa, "security", "--offline=yes", "--threshold=15", p).CombinedOutput()
		if strings.Contains(string(out), "Unknown option") || strings.Contains(string(out), "unrecognized option") {
			t.Skipf("systemd-analyze too old for offline security: %s", out)
		}
		if err != nil {
			t.Errorf("%s exposure above 1.5: %v\n%s", filepath.Base(p), err, out)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestComposeFile(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Build struct {
				Context, Dockerfile string
			}
			Command     []string
			Environment map[string]string
			Ports       []string
			Volumes     []string
			Secrets     []string
			ReadOnly    bool     `yaml:"read_only"`
			CapDrop     []string `yaml:"cap_drop"`
			SecurityOpt []string `yaml:"security_opt"`
		}
		Secrets map[string]struct{ File string }
	}
	readYAML(t, "compose.yaml", &c)
	s, ok := c.Services["braid-exit"]
	if !ok {
		t.Fatal("no braid-exit service")
	}
	if filepath.Join(s.Build.Context, s.Build.Dockerfile) != filepath.Join("..", "deploy", "Dockerfile") {
		t.Errorf("build %+v does not build deploy/Dockerfile from the repository root", s.Build)
	}
	if _, err := os.Stat(filepath.Join(s.Build.Context, "cmd", "braid")); err != nil {
		t.Errorf("build context has no cmd/braid: %v", err)
	}
	if !s.ReadOnly || len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" || len(s.SecurityOpt) != 1 {
		t.Errorf("exit service not locked down: %+v", s)
	}
	if s.Environment["BRAID_SECRET_FILE"] != "/run/secrets/braid_key" || len(s.Secrets) != 1 || s.Secrets[0] != "braid_key" || c.Secrets["braid_key"].File == "" {
		t.Errorf("secret wiring: env %v secrets %v top-level %v", s.Environment, s.Secrets, c.Secrets)
	}
	for _, p := range s.Ports {
		if strings.HasSuffix(p, ":9090") && !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("admin port %q published beyond the host's loopback", p)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0", "./cmd/braid", "FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot:nonroot", `ENTRYPOINT ["/usr/local/bin/braid"]`, "-trimpath",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`FROM golang:(\d+\.\d+)`).FindStringSubmatch(df); m == nil {
		t.Error("no golang build stage")
	} else if gomod, err := os.ReadFile("../go.mod"); err != nil || !regexp.MustCompile(`(?m)^go `+regexp.QuoteMeta(m[1])+`(\.\d+)?$`).Match(gomod) {
		t.Errorf("build stage Go %s does not match go.mod's go line (%v)", m[1], err)
	}
}

// TestStaticBuild builds braid the way the Dockerfile does and checks the
// binary needs no dynamic loader or shared library, so it runs on
// distroless/static and on OpenWrt.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := filepath.Join(t.TempDir(), "braid")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "../cmd/braid")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v segment: not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs %v", libs)
	}
}

// TestAlertRules checks the rules parse and name only metrics braid
// exports.
func TestAlertRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
	readYAML(t, "prometheus/braid-alerts.yaml", &rules)
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		admin.NewCollector(admin.SourceFunc(func() admin.Snapshot { return admin.Snapshot{} })).Describe(ch)
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	if !exported["braid_link_up"] {
		t.Fatalf("could not read the collector's metric names: %v", exported)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v incomplete", r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			for _, m := range regexp.MustCompile(`braid_[a-z_]+`).FindAllString(r.Expr, -1) {
				if !exported[m] {
					t.Errorf("%s uses %s, which braid does not export", r.Alert, m)
				}
			}
		}
	}
	if n < 4 {
		t.Errorf("%d rules", n)
	}
}

func TestOpenWrtInit(t *testing.T) {
	st, err := os.Stat("openwrt/braid.init")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o111 == 0 {
		t.Error("openwrt/braid.init is not executable")
	}
	if out, err := exec.Command("sh", "-n", "openwrt/braid.init").CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	b, _ := os.ReadFile("openwrt/braid.init")
	for _, want := range []string{"USE_PROCD=1", "start_service()", "procd_set_param command /usr/bin/braid client --config"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("braid.init lacks %q", want)
		}
	}
}
