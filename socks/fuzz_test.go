package socks

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var fuzzCreds = map[string]string{"user": "pass", "braid": "s3cret"}

const fuzzTimeout = time.Second

// runSession feeds input, as everything a client ever sends, to a fresh
// server over net.Pipe inside a synctest bubble (so the handshake timeout
// costs no real time). It checks that the connection ends within the
// handshake timeout and returns what was dialed; every dial fails.
func runSession(t *testing.T, creds map[string]string, input []byte) []string {
	var dialed []string
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Credentials = creds
		cfg.HandshakeTimeout = fuzzTimeout
		d := &dialRecorder{err: codeError(5)}
		s, err := NewServer(cfg, d.dial)
		if err != nil {
			t.Fatal(err)
		}
		cli, srv := net.Pipe()
		start := time.Now()
		s.accept(srv)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			if len(input) > 0 {
				cli.Write(input) // fails if the server stops reading
			}
		}()
		io.Copy(io.Discard, cli) // until the server closes its end
		if el := time.Since(start); el > fuzzTimeout {
			t.Errorf("connection lasted %v, over the %v handshake timeout", el, fuzzTimeout)
		}
		<-wrote
		cli.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if st := s.Stats(); st.Active != 0 || st.Total != 1 {
			t.Errorf("stats %+v", st)
		}
		dialed = d.requested()
	})
	return dialed
}

// hostRE is an independent statement of the host names the server accepts.
var hostRE = regexp.MustCompile(`^([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?$`)

// expectedDial is a reference reading of RFC 1928/1929 as braid applies
// it: the address a correct server dials for this client input, if any.
func expectedDial(in []byte, creds map[string]string) (string, bool) {
	take := func(n int) ([]byte, bool) {
		if n > len(in) {
			return nil, false
		}
		b := in[:n]
		in = in[n:]
		return b, true
	}
	hdr, ok := take(2)
	if !ok || hdr[0] != 5 {
		return "", false
	}
	methods, ok := take(int(hdr[1]))
	if !ok {
		return "", false
	}
	if creds == nil {
		if !slices.Contains(methods, 0) {
			return "", false
		}
	} else {
		if !slices.Contains(methods, 2) {
			return "", false
		}
		h, ok := take(2)
		if !ok || h[0] != 1 {
			return "", false
		}
		user, ok := take(int(h[1]))
		if !ok {
			return "", false
		}
		pl, ok := take(1)
		if !ok {
			return "", false
		}
		pass, ok := take(int(pl[0]))
		if !ok {
			return "", false
		}
		if want, found := creds[string(user)]; !found || want != string(pass) {
			return "", false
		}
	}
	req, ok := take(4)
	if !ok || req[0] != 5 || req[1] != 1 {
		return "", false
	}
	var host string
	switch req[3] {
	case 1:
		a, ok := take(4)
		if !ok {
			return "", false
		}
		host = netip.AddrFrom4([4]byte(a)).String()
	case 4:
		a, ok := take(16)
		if !ok {
			return "", false
		}
		host = netip.AddrFrom16([16]byte(a)).Unmap().String()
	case 3:
		l, ok := take(1)
		if !ok {
			return "", false
		}
		name, ok := take(int(l[0]))
		if !ok {
			return "", false
		}
		host = string(name)
		if !hostRE.MatchString(host) || len(strings.TrimSuffix(host, ".")) > 253 {
			ip, err := netip.ParseAddr(host)
			if err != nil || ip.Zone() != "" {
				// Parsed, but rejected with reply 4: the port is still read.
				if _, ok := take(2); !ok {
					return "", false
				}
				return "", false
			}
			host = ip.String()
		}
	default:
		return "", false
	}
	p, ok := take(2)
	if !ok {
		return "", false
	}
	port := binary.BigEndian.Uint16(p)
	if port == 0 {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), true
}

func checkSession(t *testing.T, creds map[string]string, input []byte) {
	dialed := runSession(t, creds, input)
	want, ok := expectedDial(input, creds)
	switch {
	case !ok && len(dialed) != 0:
		t.Fatalf("input % x: dialed %q for an invalid handshake", input, dialed)
	case ok && !slices.Equal(dialed, []string{want}):
		t.Fatalf("input % x: dialed %q, want [%q]", input, dialed, want)
	}
}

func connectDomain(name string, port uint16) []byte {
	return binary.BigEndian.AppendUint16(append([]byte{5, 1, 0, 3, byte(len(name))}, name...), port)
}

var requestSeeds = [][]byte{
	connectDomain("only-on-exit.test", 80),
	connectDomain("a.b.c.", 443),
	connectDomain("", 80),
	connectDomain("::1", 22),
	connectDomain("fe80::1%eth0", 22),
	connectDomain("bad name", 80),
	connectDomain("x", 0),
	{5, 1, 0, 1, 127, 0, 0, 1, 0, 80},
	{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187},
	{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1, 0, 53},
	{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, // BIND
	{5, 3, 0, 1, 0, 0, 0, 0, 0, 0},    // UDP ASSOCIATE
	{5, 9, 0, 1, 1, 2, 3, 4, 0, 80},   // unknown command
	{5, 1, 0, 9, 1, 2, 3, 4, 0, 80},   // unknown address type
	{4, 1, 0, 80, 127, 0, 0, 1, 0},    // SOCKS4
	{5, 1, 0, 3, 200, 'a'},            // name shorter than its length
	{5, 1},
	{},
}

func FuzzGreeting(f *testing.F) {
	for _, greet := range [][]byte{{5, 1, 0}, {5, 2, 2, 0}, {5, 0}, {5, 1, 2}, {4, 1}, {5, 255}, {}} {
		f.Add(greet)
		f.Add(append(slices.Clone(greet), requestSeeds[0]...))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkSession(t, nil, input)
	})
}

func userPass(user, pass string) []byte {
	b := append([]byte{1, byte(len(user))}, user...)
	return append(append(b, byte(len(pass))), pass...)
}

func FuzzUserPassAuth(f *testing.F) {
	// The greeting offering username/password is fixed; the fuzzer drives
	// the RFC 1929 exchange and what follows.
	f.Add(append(userPass("user", "pass"), requestSeeds[0]...))
	f.Add(append(userPass("braid", "s3cret"), requestSeeds[7]...))
	f.Add(append(userPass("user", "wrong"), requestSeeds[0]...))
	f.Add(append(userPass("", ""), requestSeeds[0]...))
	f.Add(userPass("user", "pass"))
	f.Add([]byte{1, 255, 'u'})
	f.Add([]byte{2, 4, 'u', 's', 'e', 'r', 4, 'p', 'a', 's', 's'})
	f.Add([]byte{1, 4, 'u', 's', 'e', 'r', 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSession(t, fuzzCreds, append([]byte{5, 1, 2}, data...))
	})
}

func FuzzRequest(f *testing.F) {
	for _, r := range requestSeeds {
		f.Add(r)
		f.Add(append(slices.Clone(r), "trailing"...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSession(t, nil, append([]byte{5, 1, 0}, data...))
	})
}

func FuzzLoadCredentials(f *testing.F) {
	for _, s := range []string{
		"alice:pw\n",
		"# c\r\nalice:p:w\r\n\r\nbob: x \n",
		"nocolon\n",
		":pw\n",
		"a:\n",
		"a:b\na:c\n",
		"a:" + strings.Repeat("x", 300) + "\n",
		"",
		"\xff\x00:\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		creds, err := parseCredentials(data)
		if err != nil {
			if creds != nil {
				t.Fatal("credentials returned with an error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "line ") && msg != "no credentials found" {
				t.Fatalf("error %q names no line", msg)
			}
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if len(creds) == 0 || len(creds) > lines {
			t.Fatalf("%d credentials from %d lines", len(creds), lines)
		}
		var again bytes.Buffer
		for u, p := range creds {
			if strings.ContainsAny(u, ":\r\n") || strings.ContainsAny(p, "\r\n") || checkCredential(u, p) != nil {
				t.Fatalf("bad entry %q:%q", u, p)
			}
			again.WriteString(u + ":" + p + "\n")
		}
		// Accepted credentials are a valid Config and survive a rewrite.
		c := DefaultConfig()
		c.Credentials = creds
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		creds2, err := parseCredentials(again.Bytes())
		if err != nil || len(creds2) != len(creds) {
			t.Fatalf("rewritten file: %v", err)
		}
		for u, p := range creds {
			if creds2[u] != p {
				t.Fatalf("round trip changed %q", u)
			}
		}
	})
}
