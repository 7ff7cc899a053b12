package admin

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func FuzzStatusURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9090", "[::1]:1", "http://a:1/x", "https://h/", "", "::::", "http://[::1", "%zz:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := StatusURL(s)
		if err != nil {
			if !errors.Is(err, ErrStatus) {
				t.Fatalf("error %v does not wrap ErrStatus", err)
			}
			return
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || !strings.HasSuffix(p.Path, "/status.json") {
			t.Fatalf("StatusURL(%q) = %q, not an http(s) status URL (%v)", s, u, err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"role":"client","links":[{"name":"a","state":"up","rtt_ms":1.5}],"sessions":[]}`))
	f.Add([]byte(`{"role":"exit","socks":{"replies":{"0":1}}}`))
	f.Add([]byte(`{"role":"x"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeStatus(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrStatus) {
				t.Fatalf("error %v does not wrap ErrStatus", err)
			}
			return
		}
		if st.Role != RoleClient && st.Role != RoleExit {
			t.Fatalf("accepted role %q", st.Role)
		}
		// Whatever decodes must render without panicking.
		var buf bytes.Buffer
		if err := WriteTable(&buf, st); err != nil {
			t.Fatal(err)
		}
	})
}
