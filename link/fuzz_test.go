package link

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuth(f *testing.F) {
	key := mustKey(f, Secret(bytes.Repeat([]byte{7}, SecretSize)))
	ekm := bytes.Repeat([]byte{9}, ekmSize)
	good := newAuth(key, roleClient, ekm)
	f.Add(good.marshal())
	f.Add(good.marshal()[:AuthSize-1])
	f.Add(append(good.marshal(), 0))
	f.Add([]byte{})
	f.Add([]byte{2, 1})
	f.Add(append([]byte{Version, roleServer}, make([]byte, macSize)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseAuth(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !bytes.Equal(m.marshal(), b) {
			t.Fatal("parse/marshal round trip differs")
		}
		// Only the genuine message verifies under the key.
		ok := verifyAuth([][]byte{key}, m, roleClient, ekm) == 0
		if ok != bytes.Equal(b, good.marshal()) {
			t.Fatalf("verify=%v for %x", ok, b)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	raw := bytes.Repeat([]byte{0xfb, 0xef, 0x01}, 11)[:SecretSize]
	f.Add(base64.RawURLEncoding.EncodeToString(raw))
	f.Add(base64.StdEncoding.EncodeToString(raw))
	f.Add(" " + strings.Repeat("ab", SecretSize) + "\n")
	f.Add("")
	f.Add("====")
	f.Add(strings.Repeat("z", 64))
	f.Add(strings.Repeat("A", 300))
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := ParseSecret(s)
		if err != nil {
			if !errors.Is(err, ErrBadSecret) || sec != nil {
				t.Fatalf("error %v with secret %d bytes", err, len(sec))
			}
			return
		}
		if len(sec) != SecretSize {
			t.Fatalf("%d bytes", len(sec))
		}
		again, err := ParseSecret(EncodeSecret(sec))
		if err != nil || !bytes.Equal(again, sec) {
			t.Fatalf("re-encoding does not round trip: %v", err)
		}
	})
}

func FuzzOnlyAlerts(f *testing.F) {
	f.Add([]byte{21, 3, 3, 0, 2, 2, 70})
	f.Add([]byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	f.Add([]byte{21, 3, 3, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		if onlyAlerts(p) && p[0] != 21 {
			t.Fatal("non-alert swallowed")
		}
	})
}

// FuzzServerHandshake completes a real TLS 1.3 handshake with the exit
// and then sends arbitrary bytes where the AUTH belongs: the exit must
// refuse (it cannot be forged), must not panic, and must send nothing.
func FuzzServerHandshake(f *testing.F) {
	cfg := testConfig(Secret(bytes.Repeat([]byte{7}, SecretSize)))
	cfg.HandshakeTimeout = 5 * time.Second
	srv, err := NewServer(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, roleClient})
	f.Add(append([]byte{Version, roleClient}, make([]byte, macSize)...))
	f.Add(append([]byte{Version, roleServer}, bytes.Repeat([]byte{0xff}, macSize+100)...))
	f.Add(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		peer, exit := net.Pipe()
		defer peer.Close()
		done := make(chan error, 1)
		go func() {
			c, err := srv.Handshake(context.Background(), exit)
			if c != nil {
				c.Close()
			}
			done <- err
		}()
		peer.SetDeadline(time.Now().Add(safety))
		tc := tls.Client(peer, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		tc.Write(data)
		var got int64
		if len(data) < AuthSize {
			peer.Close() // the exit is waiting for the rest
		} else {
			got, _ = io.Copy(io.Discard, peer)
		}
		err := <-done
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("exit: %v, want ErrAuthFailed", err)
		}
		if got != 0 {
			t.Fatalf("exit sent %d bytes", got)
		}
	})
}
