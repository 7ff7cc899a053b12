package main

// Operations: the admin listener's flags and start-up, and the commands an
// operator runs beside the daemons: status, init, routes, completion.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/braid-proxy/braid/admin"
	"github.com/braid-proxy/braid/link"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// defaultAdmin is where `braid status` looks unless told otherwise, and
// what `braid init --admin` suggests.
const defaultAdmin = "127.0.0.1:9090"

// opsCommands are the operator commands for newApp's command list.
func opsCommands() []*cli.Command {
	return []*cli.Command{statusCommand(), initCommand(), routesCommand(), completionCommand()}
}

// adminFlags are --admin and --admin-allow-public for `braid client` and
// `braid exit` (YAML keys admin, admin-allow-public).
func adminFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "admin", Usage: "serve Prometheus /metrics, /status.json and a dashboard on this address, e.g. " + defaultAdmin + " (off when empty)", EnvVars: []string{"BRAID_ADMIN"}}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "admin-allow-public", Usage: "allow a non-loopback --admin address (the admin listener has no authentication)", EnvVars: []string{"BRAID_ADMIN_ALLOW_PUBLIC"}}),
	}
}

// startAdmin starts the admin listener when --admin is set. The returned
// stop shuts it down and waits for it; it is a no-op when --admin is
// empty and safe to call more than once. A listen failure (port taken,
// public address not allowed) is returned, so the daemon fails at start.
func startAdmin(c *cli.Context, src admin.Source, log *slog.Logger) (stop func(), err error) {
	addr := c.String("admin")
	if addr == "" {
		return func() {}, nil
	}
	ln, err := admin.Listen(addr, c.Bool("admin-allow-public"))
	if err != nil {
		return nil, fmt.Errorf("braid: --admin: %w", err)
	}
	h := admin.NewHandler(src, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := admin.ServeListener(ctx, ln, h); err != nil {
			log.Error("braid: admin listener stopped", "err", err)
		}
	}()
	log.Info("braid: admin listener ready", "addr", ln.Addr().String(),
		"dashboard", "http://"+ln.Addr().String()+"/", "metrics", "http://"+ln.Addr().String()+"/metrics")
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			h.Close()
		})
	}, nil
}

// linkAddr describes the path a client link takes, for the dashboard and
// `braid status` (registered with admin.Links).
func linkAddr(sp linkSpec, exit string) string {
	var parts []string
	if sp.Dev != "" {
		parts = append(parts, "dev="+sp.Dev)
	}
	if sp.Src.IsValid() {
		parts = append(parts, "src="+sp.Src.String())
	}
	if len(parts) == 0 {
		parts = append(parts, "default route")
	}
	to := sp.To
	if to == "" {
		to = exit
	}
	return strings.Join(parts, " ") + " → " + to
}

// ---- braid status ----

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show every link's state, RTT, throughput and share, read from a running client's or exit's --admin listener",
		UsageText: "braid status [--admin " + defaultAdmin + "] [--watch] [--json]",
		Description: "TX and RX are what this node sent and received on each link over the last\n" +
			"second; SHARE is the link's part of all traffic. --json prints the\n" +
			"/status.json document ({\"links\": [...], \"sessions\": [...], ...}) for scripts.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "admin", Value: defaultAdmin, Usage: "the --admin address of the braid to ask (HOST:PORT or http://URL)", EnvVars: []string{"BRAID_ADMIN"}},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "refresh until interrupted"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh interval with --watch"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON (one document per line with --watch)"},
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%w: status takes no arguments (use --admin ADDR)", errUsage)
	}
	iv := c.Duration("interval")
	if iv < 100*time.Millisecond {
		return fmt.Errorf("%w: --interval %v: want at least 100ms", errUsage, iv)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	w := c.App.Writer
	show := func() error {
		st, raw, err := admin.FetchStatus(c.Context, hc, c.String("admin"))
		if err != nil {
			return fmt.Errorf("braid: %w", err)
		}
		switch {
		case c.Bool("json") && c.Bool("watch"):
			var line bytes.Buffer
			if err := json.Compact(&line, raw); err != nil {
				return fmt.Errorf("braid: status json: %w", err)
			}
			_, err = fmt.Fprintln(w, line.String())
			return err
		case c.Bool("json"):
			_, err = w.Write(raw)
			return err
		case c.Bool("watch"):
			fmt.Fprint(w, "\x1b[H\x1b[2J") // home and clear, like watch(1)
			fmt.Fprintf(w, "%s  (every %v, ^C to stop)\n\n", st.Time.Local().Format("15:04:05"), iv)
		}
		return admin.WriteTable(w, st)
	}
	if !c.Bool("watch") {
		return show()
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if err := show(); err != nil {
			if c.Context.Err() != nil {
				return nil
			}
			// Keep watching through a restart of the daemon.
			fmt.Fprintln(c.App.ErrWriter, err)
		}
		select {
		case <-t.C:
		case <-c.Context.Done():
			return nil
		}
	}
}

// ---- braid init ----

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a matching exit.yaml, client.yaml and secret file for a new client/exit pair",
		UsageText: "braid init --exit HOST:PORT [--dir DIR] [--link SPEC]... [--admin " + defaultAdmin + "]\n" +
			"then copy exit.yaml and braid.key to the exit's /etc/braid/, client.yaml and braid.key to the client's",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "exit", Usage: "the address clients will reach the exit at (HOST:PORT)", Required: true},
			&cli.StringFlag{Name: "dir", Value: ".", Usage: "where to write exit.yaml, client.yaml and braid.key"},
			&cli.StringFlag{Name: "listen", Usage: "the exit's listen address (default: all addresses, --exit's port)"},
			&cli.StringFlag{Name: "secret-path", Value: "/etc/braid/braid.key", Usage: "where the secret file will live on both machines (written into the YAML files)"},
			&cli.StringSliceFlag{Name: "link", Usage: "a client link SPEC for client.yaml (repeat; see braid client --help)"},
			&cli.IntFlag{Name: "links", Value: 2, Usage: "without --link: plain links over the default route"},
			&cli.StringFlag{Name: "socks", Value: "127.0.0.1:1080", Usage: "the client's SOCKS5 address"},
			&cli.StringFlag{Name: "admin", Usage: "enable the admin listener on both at this address, e.g. " + defaultAdmin},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing files"},
		},
		Action: runInit,
	}
}

// initPlan is what `braid init` writes.
type initPlan struct {
	exit, listen, secretPath, socks, admin string
	links                                  []string
	nLinks                                 int
}

func runInit(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%w: init takes no arguments", errUsage)
	}
	p := initPlan{
		exit: c.String("exit"), listen: c.String("listen"), secretPath: c.String("secret-path"),
		socks: c.String("socks"), admin: c.String("admin"), links: c.StringSlice("link"), nLinks: c.Int("links"),
	}
	host, port, err := net.SplitHostPort(p.exit)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: --exit %q: want HOST:PORT", errUsage, p.exit)
	}
	if p.listen == "" {
		p.listen = net.JoinHostPort("0.0.0.0", port)
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
			p.listen = net.JoinHostPort("::", port)
		}
	}
	if _, _, err := net.SplitHostPort(p.listen); err != nil {
		return fmt.Errorf("%w: --listen %q: %w", errUsage, p.listen, err)
	}
	if _, _, err := net.SplitHostPort(p.socks); err != nil {
		return fmt.Errorf("%w: --socks %q: %w", errUsage, p.socks, err)
	}
	if p.admin != "" && !admin.IsLoopback(p.admin) {
		return fmt.Errorf("%w: --admin %q: init writes only loopback admin addresses; edit the files to go public", errUsage, p.admin)
	}
	if !filepath.IsAbs(p.secretPath) {
		return fmt.Errorf("%w: --secret-path %q: want an absolute path (daemons do not run in this directory)", errUsage, p.secretPath)
	}
	for _, l := range p.links {
		if _, err := parseLinkSpec(l); err != nil {
			return err
		}
	}
	if len(p.links) == 0 && (p.nLinks < 1 || p.nLinks > 64) {
		return fmt.Errorf("%w: --links %d: want 1..64", errUsage, p.nLinks)
	}
	secret, err := link.GenerateSecret()
	if err != nil {
		return err
	}
	dir := c.String("dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("braid: init: %w", err)
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		// The secret first: if it cannot be written, no config points at nothing.
		{"braid.key", secret + "\n", 0o600},
		{"exit.yaml", p.exitYAML(), 0o644},
		{"client.yaml", p.clientYAML(), 0o644},
	}
	force := c.Bool("force")
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil && !force {
			return fmt.Errorf("braid: init: %s already exists (use --force to overwrite)", filepath.Join(dir, f.name))
		}
	}
	for _, f := range files {
		if err := writeFileMode(filepath.Join(dir, f.name), []byte(f.data), f.mode, force); err != nil {
			return fmt.Errorf("braid: init: %w", err)
		}
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s, %s and %s (mode 0600) with a fresh secret.\n\n",
		filepath.Join(dir, "exit.yaml"), filepath.Join(dir, "client.yaml"), filepath.Join(dir, "braid.key"))
	fmt.Fprintf(w, "On the exit (%s):   install exit.yaml and braid.key as %s/, then\n", host, filepath.Dir(p.secretPath))
	fmt.Fprintf(w, "    braid exit --config %s/exit.yaml      (or: systemctl enable --now braid-exit)\n", filepath.Dir(p.secretPath))
	fmt.Fprintf(w, "On the client:  install client.yaml and braid.key as %s/, then\n", filepath.Dir(p.secretPath))
	fmt.Fprintf(w, "    braid client --config %s/client.yaml  (or: systemctl enable --now braid-client)\n", filepath.Dir(p.secretPath))
	fmt.Fprintf(w, "Keep braid.key secret (chmod 600); anyone with it can use the exit.\n")
	return nil
}

// writeFileMode creates path with mode, refusing to replace a file unless
// overwrite, and sets the mode even when the file existed or the umask
// is strict.
func writeFileMode(path string, data []byte, mode os.FileMode, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// yamlString quotes s as a YAML double-quoted scalar (JSON strings are
// valid ones), so no value can change the document's structure.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p initPlan) exitYAML() string {
	var b strings.Builder
	b.WriteString("# braid exit configuration, written by `braid init`.\n")
	b.WriteString("# Run: braid exit --config " + filepath.Dir(p.secretPath) + "/exit.yaml\n")
	b.WriteString("# Keys are `braid exit` flag names; flags and BRAID_* variables override them.\n")
	fmt.Fprintf(&b, "listen: %s\n", yamlString(p.listen))
	fmt.Fprintf(&b, "secret-file: %s\n", yamlString(p.secretPath))
	b.WriteString("log-level: \"info\"\n")
	writeAdmin(&b, p.admin)
	b.WriteString("# Internal destinations the exit may dial (it refuses private ranges by default):\n")
	b.WriteString("# allow:\n#   - \"10.0.0.0/8\"\n")
	b.WriteString("# A real certificate instead of the self-signed one (then set server-name on the client):\n")
	b.WriteString("# cert: \"/etc/braid/cert.pem\"\n# key: \"/etc/braid/key.pem\"\n")
	return b.String()
}

func (p initPlan) clientYAML() string {
	var b strings.Builder
	b.WriteString("# braid client configuration, written by `braid init`.\n")
	b.WriteString("# Run: braid client --config " + filepath.Dir(p.secretPath) + "/client.yaml\n")
	b.WriteString("# Keys are `braid client` flag names; flags and BRAID_* variables override them.\n")
	fmt.Fprintf(&b, "exit: %s\n", yamlString(p.exit))
	fmt.Fprintf(&b, "secret-file: %s\n", yamlString(p.secretPath))
	fmt.Fprintf(&b, "socks: %s\n", yamlString(p.socks))
	if len(p.links) > 0 {
		b.WriteString("# One link per uplink; see deploy/MULTI-UPLINK.md and `braid routes`.\n")
		b.WriteString("link:\n")
		for _, l := range p.links {
			fmt.Fprintf(&b, "  - %s\n", yamlString(l))
		}
	} else {
		b.WriteString("# Plain links over the default route. With several uplinks use one link each:\n")
		b.WriteString("# link:\n#   - \"dev=eth0,name=dsl\"\n#   - \"dev=wwan0,name=lte\"\n")
		fmt.Fprintf(&b, "links: %d\n", p.nLinks)
	}
	b.WriteString("log-level: \"info\"\n")
	writeAdmin(&b, p.admin)
	b.WriteString("# Require SOCKS5 username/password (user:password lines):\n")
	b.WriteString("# socks-auth-file: \"/etc/braid/socks-auth\"\n")
	return b.String()
}

func writeAdmin(b *strings.Builder, addr string) {
	if addr != "" {
		fmt.Fprintf(b, "admin: %s\n", yamlString(addr))
		return
	}
	b.WriteString("# Metrics, `braid status` and the dashboard:\n")
	fmt.Fprintf(b, "# admin: %s\n", yamlString(defaultAdmin))
}

// ---- braid routes ----

func routesCommand() *cli.Command {
	return &cli.Command{
		Name:  "routes",
		Usage: "print the ip rule/ip route commands and --link flags for one link per uplink",
		UsageText: "braid routes --iface eth0=192.168.1.2/24,gw=192.168.1.1 --iface wwan0=10.64.0.5\n\n" +
			"IFACE=SRC[/PREFIX][,gw=GATEWAY][,table=N][,name=NAME]: SRC is the interface's\n" +
			"address; PREFIX adds its subnet to the table; without gw the default route\n" +
			"goes straight out of the interface (PPP, LTE modems in raw-IP mode).",
		Description: "Each uplink gets its own routing table with a default route out of it, and\n" +
			"rules sending packets from its address (src=) or bound to it (dev=) there.\n" +
			"The printed links use src=, which needs no privileges. Nothing is run:\n" +
			"review the commands, then pipe them to sh as root. See deploy/MULTI-UPLINK.md.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "iface", Usage: "an uplink: IFACE=SRC[/PREFIX][,gw=GW][,table=N][,name=NAME] (repeat)", Required: true},
			&cli.IntFlag{Name: "table", Value: 100, Usage: "routing table (and rule priority) of the first uplink; the next get +1"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("%w: routes takes no arguments (use --iface)", errUsage)
			}
			var ups []uplink
			for i, s := range c.StringSlice("iface") {
				u, err := parseUplink(s, c.Int("table")+i)
				if err != nil {
					return err
				}
				ups = append(ups, u)
			}
			script, err := routesScript(ups)
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// uplink is one --iface of `braid routes`.
type uplink struct {
	Iface  string
	Src    netip.Addr
	Prefix netip.Prefix // the interface's subnet; invalid when not given
	GW     netip.Addr   // invalid: default route straight out of Iface
	Table  int
	Name   string
}

// safeWord reports whether s is made only of characters that need no
// quoting in sh and cannot be mistaken for a --link separator.
func safeWord(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '-', r == '@':
		default:
			return false
		}
	}
	return s != "" && s[0] != '-'
}

// parseUplink parses IFACE=SRC[/PREFIX][,gw=GW][,table=N][,name=NAME];
// table is used unless the spec gives one.
func parseUplink(s string, table int) (uplink, error) {
	bad := func(format string, a ...any) (uplink, error) {
		return uplink{}, fmt.Errorf("%w: --iface %q: %s", errUsage, s, fmt.Sprintf(format, a...))
	}
	if len(s) > 256 {
		return bad("too long")
	}
	parts := strings.Split(s, ",")
	iface, addr, ok := strings.Cut(parts[0], "=")
	if !ok {
		return bad("want IFACE=SRC[/PREFIX]")
	}
	if len(iface) > 15 || !safeWord(iface) {
		return bad("%q is not an interface name", iface)
	}
	u := uplink{Iface: iface, Name: iface, Table: table}
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil || p.Addr().Zone() != "" {
			return bad("%q is not ADDRESS/PREFIX", addr)
		}
		u.Src, u.Prefix = p.Addr(), p.Masked()
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return bad("%q is not an IP address", addr)
		}
		u.Src = a
	}
	u.Src = u.Src.Unmap()
	if !u.Src.IsGlobalUnicast() || u.Src.IsLoopback() {
		return bad("%s is not a unicast address an uplink could have", u.Src)
	}
	seen := map[string]bool{}
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return bad("%q: want key=value", kv)
		}
		if seen[k] {
			return bad("%q given twice", k)
		}
		seen[k] = true
		switch k {
		case "gw":
			a, err := netip.ParseAddr(v)
			if err != nil || a.Zone() != "" {
				return bad("gw=%q is not an IP address", v)
			}
			a = a.Unmap()
			if a.Is4() != u.Src.Is4() {
				return bad("gw %s and source %s are of different IP versions", a, u.Src)
			}
			u.GW = a
		case "table":
			n, err := strconv.Atoi(v)
			if err != nil {
				return bad("table=%q is not a number", v)
			}
			u.Table = n
		case "name":
			if len(v) > 64 || !safeWord(v) {
				return bad("name=%q: use letters, digits, '.', '_', '-', '@'", v)
			}
			u.Name = v
		default:
			return bad("unknown key %q (want gw, table, name)", k)
		}
	}
	// 253..255 are the kernel's default, main and local tables; 0 is "unspecified".
	if u.Table < 1 || u.Table > 1<<31-1 || (u.Table >= 253 && u.Table <= 255) {
		return bad("table %d: want 1..2147483647 except 253, 254, 255", u.Table)
	}
	return u, nil
}

// errDuplicate is for uplinks that would share a table, a source or a name.
var errDuplicate = errors.New("braid: routes: duplicate")

// routesScript renders the commands and link flags for ups.
func routesScript(ups []uplink) (string, error) {
	seen := map[string]string{}
	for _, u := range ups {
		for _, key := range []string{"table " + strconv.Itoa(u.Table), "address " + u.Src.String(), "interface " + u.Iface, "name " + u.Name} {
			if prev, ok := seen[key]; ok {
				return "", fmt.Errorf("%w: %s used by %s and %s", errDuplicate, key, prev, u.Iface)
			}
			seen[key] = u.Iface
		}
	}
	var b strings.Builder
	b.WriteString("# Policy routing for braid: each link leaves through its own uplink.\n")
	b.WriteString("# Run as root once the interfaces are up (e.g. braid routes ... | sudo sh).\n")
	b.WriteString("# These do not survive a reboot or an address change: see deploy/MULTI-UPLINK.md.\n")
	for _, u := range ups {
		ip := "ip"
		if u.Src.Is6() {
			ip = "ip -6"
		}
		t := strconv.Itoa(u.Table)
		fmt.Fprintf(&b, "\n# %s: source %s, table %s\n", u.Iface, u.Src, t)
		if u.Prefix.IsValid() {
			fmt.Fprintf(&b, "%s route replace %s dev %s src %s table %s\n", ip, u.Prefix, u.Iface, u.Src, t)
		}
		if u.GW.IsValid() {
			fmt.Fprintf(&b, "%s route replace default via %s dev %s src %s table %s\n", ip, u.GW, u.Iface, u.Src, t)
		} else {
			fmt.Fprintf(&b, "%s route replace default dev %s src %s table %s\n", ip, u.Iface, u.Src, t)
		}
		// del first so running the script twice leaves one rule of each.
		for _, sel := range []string{"from " + u.Src.String(), "oif " + u.Iface} {
			fmt.Fprintf(&b, "%s rule del %s table %s priority %s 2>/dev/null || true\n", ip, sel, t, t)
			fmt.Fprintf(&b, "%s rule add %s table %s priority %s\n", ip, sel, t, t)
		}
	}
	b.WriteString("\n# braid client flags, one link per uplink:\n#  ")
	for _, u := range ups {
		fmt.Fprintf(&b, " --link src=%s,name=%s", u.Src, u.Name)
	}
	b.WriteString("\n# or in client.yaml:\n# link:\n")
	for _, u := range ups {
		fmt.Fprintf(&b, "#   - \"src=%s,name=%s\"\n", u.Src, u.Name)
	}
	b.WriteString("# (dev=IFACE instead of src= also works with these rules, but needs CAP_NET_RAW.)\n")
	return b.String(), nil
}

// ---- braid completion ----

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		UsageText: "eval \"$(braid completion bash)\"   or   braid completion zsh > \"${fpath[1]}/_braid\"",
		Action: func(c *cli.Context) error {
			script, ok := completionScripts[c.Args().First()]
			if !ok || c.NArg() != 1 {
				return fmt.Errorf("%w: completion wants one shell: bash or zsh", errUsage)
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// completionScripts ask braid itself for the candidates: urfave/cli
// answers a command line ending in --generate-bash-completion with the
// commands or (after a "-") the flags that may follow.
var completionScripts = map[string]string{
	"bash": `# bash completion for braid. Load with: eval "$(braid completion bash)"
_braid_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	[[ $cur == -* ]] && args+=("$cur")
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _braid_complete braid
`,
	"zsh": `#compdef braid
# zsh completion for braid. Install with: braid completion zsh > "${fpath[1]}/_braid"
# or load now with: source <(braid completion zsh)
_braid() {
	local -a args candidates
	args=("${(@)words[2,CURRENT-1]}")
	[[ ${words[CURRENT]} == -* ]] && args+=("${words[CURRENT]}")
	candidates=("${(@f)$(${words[1]} "${args[@]}" --generate-bash-completion 2>/dev/null)}")
	compadd -a candidates || _files
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_braid "$@"
else
	compdef _braid braid
fi
`,
}
