package link

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestParseAuth(t *testing.T) {
	key := mustKey(t, newSecret(t))
	ekm := make([]byte, ekmSize)
	rand.Read(ekm)
	m := newAuth(key, roleClient, ekm)
	good := m.marshal()
	if len(good) != AuthSize {
		t.Fatalf("marshal: %d bytes", len(good))
	}
	got, err := parseAuth(good)
	if err != nil || got != m {
		t.Fatalf("round trip: %v", err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", good[:AuthSize-1], ErrMalformed},
		{"long", append(bytes.Clone(good), 0), ErrMalformed},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrVersion},
		{"role 0", mod(func(b []byte) []byte { b[1] = 0; return b }), ErrMalformed},
		{"role 3", mod(func(b []byte) []byte { b[1] = 3; return b }), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseAuth(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyAuth(t *testing.T) {
	k1, k2, k3 := mustKey(t, newSecret(t)), mustKey(t, newSecret(t)), mustKey(t, newSecret(t))
	ekm := make([]byte, ekmSize)
	rand.Read(ekm)
	otherEKM := bytes.Clone(ekm)
	otherEKM[0] ^= 1
	m := newAuth(k2, roleClient, ekm)
	for _, tc := range []struct {
		name string
		keys [][]byte
		role byte
		ekm  []byte
		want int
	}{
		{"second key", [][]byte{k1, k2}, roleClient, ekm, 1},
		{"only key", [][]byte{k2}, roleClient, ekm, 0},
		{"no key", [][]byte{k1, k3}, roleClient, ekm, -1},
		{"other role", [][]byte{k2}, roleServer, ekm, -1},
		{"other session", [][]byte{k2}, roleClient, otherEKM, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verifyAuth(tc.keys, m, tc.role, tc.ekm); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
	// The role is under the MAC: relabelling a client proof as the
	// exit's does not verify.
	relabelled := m
	relabelled.role = roleServer
	if verifyAuth([][]byte{k2}, relabelled, roleServer, ekm) != -1 {
		t.Fatal("relabelled proof verified")
	}
}

func TestOnlyAlerts(t *testing.T) {
	alert := []byte{21, 3, 3, 0, 2, 2, 70}
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"alert", alert, true},
		{"two alerts", append(bytes.Clone(alert), alert...), true},
		{"empty", nil, false},
		{"handshake", []byte{22, 3, 3, 0, 2, 1, 0}, false},
		{"alert then handshake", append(bytes.Clone(alert), 22, 3, 3, 0, 0), false},
		{"truncated header", alert[:4], false},
		{"truncated body", alert[:6], false},
		{"length high byte", []byte{21, 3, 3, 1, 0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyAlerts(tc.in); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}
