package socks

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	creds := map[string]string{"u": "p"}
	cases := []struct {
		name   string
		mod    func(c *Config)
		public bool // want ErrPublicWithoutAuth
		ok     bool
	}{
		{"default", func(c *Config) {}, false, true},
		{"ipv6 loopback", func(c *Config) { c.Listen = "[::1]:1080" }, false, true},
		{"localhost", func(c *Config) { c.Listen = "localhost:1080" }, false, true},
		{"127/8", func(c *Config) { c.Listen = "127.9.9.9:0" }, false, true},
		{"mapped loopback", func(c *Config) { c.Listen = "[::ffff:127.0.0.1]:1080" }, false, true},
		{"all interfaces v4", func(c *Config) { c.Listen = "0.0.0.0:1080" }, true, false},
		{"all interfaces v6", func(c *Config) { c.Listen = "[::]:1080" }, true, false},
		{"empty host", func(c *Config) { c.Listen = ":1080" }, true, false},
		{"lan address", func(c *Config) { c.Listen = "192.168.1.5:1080" }, true, false},
		{"hostname", func(c *Config) { c.Listen = "proxy.lan:1080" }, true, false},
		{"public with AllowPublic", func(c *Config) { c.Listen = "0.0.0.0:1080"; c.AllowPublic = true }, false, true},
		{"public with credentials", func(c *Config) { c.Listen = "0.0.0.0:1080"; c.Credentials = creds }, false, true},
		{"no port", func(c *Config) { c.Listen = "127.0.0.1" }, false, false},
		{"port out of range", func(c *Config) { c.Listen = "127.0.0.1:65536" }, false, false},
		{"named port", func(c *Config) { c.Listen = "127.0.0.1:socks" }, false, false},
		{"zero timeout", func(c *Config) { c.HandshakeTimeout = 0 }, false, false},
		{"negative timeout", func(c *Config) { c.HandshakeTimeout = -time.Second }, false, false},
		{"zero max conns", func(c *Config) { c.MaxConns = 0 }, false, false},
		{"empty credentials map", func(c *Config) { c.Credentials = map[string]string{} }, false, false},
		{"empty user", func(c *Config) { c.Credentials = map[string]string{"": "p"} }, false, false},
		{"empty password", func(c *Config) { c.Credentials = map[string]string{"u": ""} }, false, false},
		{"long user", func(c *Config) { c.Credentials = map[string]string{strings.Repeat("u", 256): "p"} }, false, false},
		{"255 byte credentials", func(c *Config) {
			c.Credentials = map[string]string{strings.Repeat("u", 255): strings.Repeat("p", 255)}
		}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
			if tc.public != errors.Is(err, ErrPublicWithoutAuth) {
				t.Fatalf("Validate() = %v, want ErrPublicWithoutAuth=%v", err, tc.public)
			}
		})
	}
}

func TestValidateDoesNotLeakPassword(t *testing.T) {
	c := DefaultConfig()
	c.Credentials = map[string]string{"u": strings.Repeat("hunter2", 40)}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate() = %v: want an error without the password", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentials(t *testing.T) {
	content := "# braid users\r\n" +
		"\n" +
		"alice:pa:ss:word\r\n" +
		"   # indented comment\n" +
		"bob: spaced pass \n" +
		"carol:x" // no final newline
	got, err := LoadCredentials(writeFile(t, content))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alice": "pa:ss:word", "bob": " spaced pass ", "carol": "x"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// What LoadCredentials returns is what Config accepts.
	c := DefaultConfig()
	c.Credentials = got
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := []struct {
		name, content, want string
	}{
		{"no colon", "alice:secretpw\nbob secretpw\n", "line 2: "},
		{"empty user", "# c\n:secretpw\n", "line 2: empty username"},
		{"empty password", "alice:\n", "line 1: empty password"},
		{"long user", long + ":secretpw\n", "line 1: username longer than 255"},
		{"long password", "alice:" + long + "\n", "line 1: password longer than 255"},
		{"duplicate", "alice:secretpw\n\nalice:secretpw2\n", "line 3: duplicate username \"alice\""},
		{"stray CR", "alice:secretpw\r\r\n", "line 1: control character"},
		{"only comments", "# nobody\n\n", "no credentials"},
		{"empty", "", "no credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCredentials(writeFile(t, tc.content))
			if err == nil || !errors.Is(err, ErrCredentialsFile) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCredentialsFile containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") || strings.Contains(err.Error(), long) {
				t.Fatalf("error %q leaks a secret", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadCredentials(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
	})
	t.Run("too big", func(t *testing.T) {
		big := strings.Repeat("# padding\n", maxCredentialsFileSize/10+1)
		_, err := LoadCredentials(writeFile(t, big))
		if !errors.Is(err, ErrCredentialsFile) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
}
