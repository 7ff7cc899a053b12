package link

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Version is the link protocol version carried in every AUTH message.
const Version = 1

// AuthSize is the size of an AUTH message: version, role, HMAC-SHA256.
const AuthSize = 2 + macSize

const macSize = sha256.Size

// Roles in an AUTH message. The role is inside the MAC, so an exit cannot
// be fooled by its own proof reflected back at it, nor a client by its own.
const (
	roleClient byte = 1
	roleServer byte = 2
)

// Labels that keep braid's keys and MACs apart from anything else derived
// from the same secret or TLS session. Changing any of them is a new
// protocol version.
const (
	ekmLabel  = "EXPORTER-braid-link-auth-v1"
	ekmSize   = 32
	kdfSalt   = "braid link v1"
	kdfInfo   = "braid link v1 auth key"
	macDomain = "braid link v1 auth\x00"
)

// authMsg is the AUTH message, AuthSize bytes on the wire:
//
//	version u8 | role u8 | mac [32]
type authMsg struct {
	version byte
	role    byte
	mac     [macSize]byte
}

func (m *authMsg) marshal() []byte {
	b := make([]byte, 0, AuthSize)
	b = append(b, m.version, m.role)
	return append(b, m.mac[:]...)
}

// parseAuth decodes an AUTH message. It checks the size, the version and
// that the role is one of the two known ones; whether the role is the
// expected one and the MAC are the caller's business.
func parseAuth(b []byte) (authMsg, error) {
	var m authMsg
	if len(b) != AuthSize {
		return m, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), AuthSize)
	}
	m.version, m.role = b[0], b[1]
	if m.version != Version {
		return m, fmt.Errorf("%w: version %d, this build speaks %d", ErrVersion, m.version, Version)
	}
	if m.role != roleClient && m.role != roleServer {
		return m, fmt.Errorf("%w: unknown role %d", ErrMalformed, m.role)
	}
	copy(m.mac[:], b[2:])
	return m, nil
}

// deriveKey turns a shared secret into the HMAC key, so the raw secret is
// used for nothing else and a future use can derive its own key.
func deriveKey(secret []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, []byte(kdfSalt), kdfInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("link: derive key: %w", err)
	}
	return k, nil
}

// authMAC is the proof one side sends: HMAC(key, domain | version | role |
// EKM). The EKM is unique to this TLS session and both ends see the same
// value only if nobody terminated TLS in between, which is what binds the
// proof to the session.
func authMAC(key []byte, role byte, ekm []byte) [macSize]byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macDomain))
	h.Write([]byte{Version, role})
	h.Write(ekm)
	var out [macSize]byte
	h.Sum(out[:0])
	return out
}

// newAuth builds the AUTH message for role.
func newAuth(key []byte, role byte, ekm []byte) authMsg {
	return authMsg{version: Version, role: role, mac: authMAC(key, role, ekm)}
}

// verifyAuth checks m against every key and returns the index of the one
// that matches, or -1. It compares in constant time and tries every key,
// so timing says nothing about which keys exist.
func verifyAuth(keys [][]byte, m authMsg, wantRole byte, ekm []byte) int {
	if m.version != Version || m.role != wantRole {
		return -1
	}
	match := -1
	for i, k := range keys {
		want := authMAC(k, wantRole, ekm)
		if hmac.Equal(want[:], m.mac[:]) && match < 0 {
			match = i
		}
	}
	return match
}
