package link

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// SecretSize is the length of the shared secret in bytes.
const SecretSize = 32

// maxSecretFile bounds what LoadSecret reads: a secret is 43 characters,
// anything much larger is the wrong file.
const maxSecretFile = 4096

// maxSecretText bounds what ParseSecret looks at, so a huge input is
// refused before any decoding.
const maxSecretText = 256

// Secret is a shared secret. Its formatting and log value are redacted so
// it cannot leak through a stray Printf or slog call; it is still a
// []byte, so []byte values convert to it implicitly.
type Secret []byte

// Format prints a placeholder for every verb.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, "[secret redacted]") }

// LogValue prints a placeholder.
func (Secret) LogValue() slog.Value { return slog.StringValue("[secret redacted]") }

// String returns the placeholder too; use EncodeSecret for the real text.
func (Secret) String() string { return "[secret redacted]" }

// EncodeSecret returns the text form of a secret, as GenerateSecret prints
// it: unpadded URL-safe base64 (43 characters for SecretSize bytes).
func EncodeSecret(s Secret) string { return base64.RawURLEncoding.EncodeToString(s) }

// GenerateSecret returns a new random secret in text form; this is what
// `braid keygen` prints, for both ends' configuration.
func GenerateSecret() (string, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("link: generate secret: %w", err)
	}
	return EncodeSecret(b), nil
}

// ParseSecret decodes a secret from text, ignoring surrounding white
// space. It accepts unpadded or padded base64 (URL-safe or standard
// alphabet) and hex. Errors never echo the input, which may be a nearly
// right secret.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadSecret)
	}
	if len(s) > maxSecretText {
		return nil, fmt.Errorf("%w: %d characters, a secret is %d", ErrBadSecret, len(s), base64.RawURLEncoding.EncodedLen(SecretSize))
	}
	if len(s) == hex.EncodedLen(SecretSize) {
		out := make([]byte, SecretSize)
		if _, err := hex.Decode(out, []byte(s)); err == nil {
			return out, nil
		}
		// 64 characters is not valid base64 of 32 bytes either.
		return nil, fmt.Errorf("%w: 64 characters but not hex", ErrBadSecret)
	}
	body := strings.TrimRight(s, "=")
	if pad := len(s) - len(body); pad > 2 {
		return nil, fmt.Errorf("%w: too much base64 padding", ErrBadSecret)
	}
	if n := base64.RawURLEncoding.DecodedLen(len(body)); n != SecretSize || len(body) != base64.RawURLEncoding.EncodedLen(SecretSize) {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d (expected %d base64 or %d hex characters)",
			ErrBadSecret, n, SecretSize, base64.RawURLEncoding.EncodedLen(SecretSize), hex.EncodedLen(SecretSize))
	}
	enc := base64.RawURLEncoding
	if strings.ContainsAny(body, "+/") {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, SecretSize)
	n, err := enc.Strict().Decode(out, []byte(body))
	if err != nil || n != SecretSize {
		return nil, fmt.Errorf("%w: not base64 or hex", ErrBadSecret)
	}
	return out, nil
}

// LoadSecret reads a secret file (one secret in ParseSecret's text form).
//
// If the file is accessible to group or others, LoadSecret still returns
// the secret, and permWarning (wrapping ErrSecretFileMode) says so for the
// caller to log; err is for failures that leave no secret.
func LoadSecret(path string) (secret Secret, permWarning error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("link: secret file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("link: secret file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrBadSecret, path)
	}
	if st.Size() > maxSecretFile {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes, too large for a secret file", ErrBadSecret, path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("link: secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFile {
		return nil, nil, fmt.Errorf("%w: %s grew too large for a secret file", ErrBadSecret, path)
	}
	secret, err = ParseSecret(string(data))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	// Windows has no meaningful permission bits here.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		permWarning = fmt.Errorf("%w: %s has mode %#o; chmod 600 it", ErrSecretFileMode, path, perm)
	}
	return secret, permWarning, nil
}
