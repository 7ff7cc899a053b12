package main

import (
	"fmt"
	"log/slog"

	"github.com/braid-proxy/braid/link"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "print a fresh random shared secret for --secret-file",
		UsageText: "braid keygen > braid.key && chmod 600 braid.key",
		Action: func(c *cli.Context) error {
			s, err := link.GenerateSecret()
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, s)
			return nil
		},
	}
}

// loadSecret reads the shared secret, warning when others can read it.
func loadSecret(path string, log *slog.Logger) (link.Secret, error) {
	secret, warn, err := link.LoadSecret(path)
	if err != nil {
		return nil, err
	}
	if warn != nil {
		log.Warn("braid: secret file is readable by others; chmod 600 it", "file", path, "err", warn)
	}
	return secret, nil
}
