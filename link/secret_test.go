package link

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if len(a) != 43 {
		t.Fatalf("secret text %d chars, want 43", len(a))
	}
	sa, err := ParseSecret(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(sa) != SecretSize || EncodeSecret(sa) != a {
		t.Fatal("round trip changed the secret")
	}
}

func TestParseSecret(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xef, 0x01}, 11)[:SecretSize] // has + / - _ in base64
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"base64url", base64.RawURLEncoding.EncodeToString(raw), true},
		{"base64url padded", base64.URLEncoding.EncodeToString(raw), true},
		{"base64 std", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 std raw", base64.RawStdEncoding.EncodeToString(raw), true},
		{"hex", hex.EncodeToString(raw), true},
		{"HEX", strings.ToUpper(hex.EncodeToString(raw)), true},
		{"whitespace", "  \t" + base64.RawURLEncoding.EncodeToString(raw) + "\r\n", true},
		{"empty", "", false},
		{"blank", " \n ", false},
		{"short", base64.RawURLEncoding.EncodeToString(raw[:31]), false},
		{"long", base64.RawURLEncoding.EncodeToString(append(raw, 1)), false},
		{"hex short", hex.EncodeToString(raw[:31]), false},
		{"64 not hex", strings.Repeat("z", 64), false},
		{"huge", strings.Repeat("A", 10000), false},
		{"bad chars", strings.Repeat("*", 43), false},
		{"mixed alphabets", "-+" + base64.RawURLEncoding.EncodeToString(raw)[2:], false},
		{"too much padding", base64.RawURLEncoding.EncodeToString(raw) + "===", false},
		{"non-canonical last char", base64.RawURLEncoding.EncodeToString(raw)[:42] + "B", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecret(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrBadSecret) || got != nil {
					t.Fatalf("got %x, %v; want ErrBadSecret", []byte(got), err)
				}
				if s := strings.TrimSpace(tc.in); len(s) >= 8 && strings.Contains(err.Error(), s[:8]) {
					t.Fatalf("error echoes the input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("got %x, want %x", []byte(got), raw)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret(bytes.Repeat([]byte{0xab}, SecretSize))
	cfg := DefaultConfig()
	cfg.Secret = s
	cfg.AcceptSecrets = []Secret{s}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "cfg", cfg, "secret", s)
	out := fmt.Sprintf("%v %s %x %X %q %d %+v %#v", s, s, s, s, s, s, cfg, cfg) + logged.String()
	for _, leak := range []string{"abab", "ABAB", "171", EncodeSecret(s)[:8]} {
		if strings.Contains(out, leak) {
			t.Fatalf("secret leaked (%q) in %s", leak, out)
		}
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	text, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ParseSecret(text)
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}

	s, warn, err := LoadSecret(write("ok", text+"\n", 0o600))
	if err != nil || warn != nil || !bytes.Equal(s, want) {
		t.Fatalf("0600: %v, %v", warn, err)
	}
	s, warn, err = LoadSecret(write("open", text, 0o644))
	if err != nil || !bytes.Equal(s, want) {
		t.Fatalf("0644: %v", err)
	}
	if runtime.GOOS != "windows" && !errors.Is(warn, ErrSecretFileMode) {
		t.Fatalf("0644 gave no warning: %v", warn)
	}
	for name, path := range map[string]string{
		"missing": filepath.Join(dir, "nope"),
		"dir":     dir,
		"large":   write("large", strings.Repeat("A", maxSecretFile+1), 0o600),
		"garbage": write("garbage", "hunter2", 0o600),
	} {
		if s, _, err := LoadSecret(path); err == nil || s != nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(Secret(make([]byte, SecretSize)))
	good.Secret[0] = 1
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	other := Secret(bytes.Repeat([]byte{2}, SecretSize))
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no secret", func(c *Config) { c.Secret = nil }},
		{"short secret", func(c *Config) { c.Secret = c.Secret[:16] }},
		{"short accept secret", func(c *Config) { c.AcceptSecrets = []Secret{other[:5]} }},
		{"accept repeats secret", func(c *Config) { c.AcceptSecrets = []Secret{other, c.Secret} }},
		{"too many accept secrets", func(c *Config) {
			for i := range MaxAcceptSecrets + 1 {
				s := bytes.Repeat([]byte{byte(10 + i)}, SecretSize)
				c.AcceptSecrets = append(c.AcceptSecrets, s)
			}
		}},
		{"zero timeout", func(c *Config) { c.HandshakeTimeout = 0 }},
		{"zero pending", func(c *Config) { c.MaxPending = 0 }},
		{"cert without key", func(c *Config) {
			cert, _ := selfSignedCert()
			cert.PrivateKey = nil
			c.Certificate = cert
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Secret = append(Secret(nil), good.Secret...)
			tc.mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
