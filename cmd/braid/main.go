// Command braid is a SOCKS5 bonding proxy: `braid client` bonds one
// connection over several uplinks to `braid exit`, which dials targets.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/braid-proxy/braid/admin"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "braid:", strings.TrimPrefix(err.Error(), "braid: "))
		os.Exit(1)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "braid",
		Usage: "one TCP connection over all your uplinks: a SOCKS5 bonding proxy",
		Description: "Run `braid exit` on a server and `braid client` where your uplinks are; point\n" +
			"applications at the client's SOCKS5 port. Every flag can also be set by its\n" +
			"BRAID_* environment variable or in the YAML file given with --config.",
		Version:              buildVersion(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		// A --link SPEC is comma-separated: never split slice flags at commas.
		DisableSliceFlagSeparator: true,
		Commands: append([]*cli.Command{
			exitCommand(),
			clientCommand(),
			keygenCommand(),
			versionCommand(),
		}, opsCommands()...),
	}
}

// withConfig makes a command's flags readable from the YAML file named by
// --config (flags and environment variables still win).
func withConfig(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, &cli.StringFlag{
		Name: "config", Usage: "YAML file with any of this command's flags (keys are flag names)",
		EnvVars: []string{"BRAID_CONFIG"},
	})
	cmd.Before = func(c *cli.Context) error {
		if c.String("config") == "" {
			return nil
		}
		load := altsrc.InitInputSourceWithContext(cmd.Flags, altsrc.NewYamlSourceFromFlagFunc("config"))
		if err := load(c); err != nil {
			return fmt.Errorf("braid: config %s: %w", c.String("config"), err)
		}
		return nil
	}
	return cmd
}

// logFlags are shared by the long-running commands.
func logFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error (debug logs destinations)", EnvVars: []string{"BRAID_LOG_LEVEL"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"BRAID_LOG_FORMAT"}}),
	}
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("braid: --log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, fmt.Errorf("braid: --log-format %q: want text or json", c.String("log-format"))
}

func buildVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print braid's version and build information",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, "braid", buildVersion())
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "CGO_ENABLED":
						fmt.Fprintf(c.App.Writer, "  %s=%s\n", s.Key, s.Value)
					}
				}
			}
			return nil
		},
	}
}

// errUsage marks mistakes in flags.
var errUsage = errors.New("braid: usage")

// requireFlags checks flags that must be set by flag, environment or
// config file (urfave's Required runs before the config file is read).
func requireFlags(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.String(n) == "" {
			return fmt.Errorf("%w: --%s is required (flag, BRAID_%s or config file)", errUsage, n,
				strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
		}
	}
	return nil
}

// serveUntilDone runs the admin listener (if --admin) for src, waits for
// SIGINT/SIGTERM (the command's context), then closes node.
func serveUntilDone(c *cli.Context, node io.Closer, src admin.Source, log *slog.Logger) error {
	stopAdmin, err := startAdmin(c, src, log)
	if err != nil {
		node.Close()
		return err
	}
	defer stopAdmin()
	<-c.Context.Done()
	log.Info("braid " + c.Command.Name + ": shutting down")
	return node.Close()
}
