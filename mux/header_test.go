package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		addr string
		typ  AddrType
		wire []byte
	}{
		{"127.0.0.1:80", AddrIPv4, []byte{1, 1, 127, 0, 0, 1, 0, 80}},
		{"[::1]:443", AddrIPv6, append(append([]byte{1, 4}, netip.IPv6Loopback().AsSlice()...), 1, 187)},
		{"example.com:8080", AddrDomain, append([]byte{1, 3, 11}, append([]byte("example.com"), 0x1f, 0x90)...)},
		{"[::ffff:1.2.3.4]:1", AddrIPv6, nil}, // v4-mapped stays IPv6
		{strings.Repeat("a", 255) + ":65535", AddrDomain, nil},
		{"1.2.3.4.example:9", AddrDomain, nil},
		{"bücher.example:9", AddrDomain, nil}, // UTF-8 passes; the resolver decides
	}
	for _, tc := range tests {
		r, err := ParseRequest(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if r.AddrType() != tc.typ {
			t.Fatalf("%s: type %d, want %d", tc.addr, r.AddrType(), tc.typ)
		}
		b, err := AppendRequest([]byte("prefix"), r)
		if err != nil {
			t.Fatal(err)
		}
		b = b[len("prefix"):]
		if tc.wire != nil && !bytes.Equal(b, tc.wire) {
			t.Fatalf("%s: wire %x, want %x", tc.addr, b, tc.wire)
		}
		got, n, err := DecodeRequest(append(b, "payload"...))
		if err != nil || n != len(b) || got != r {
			t.Fatalf("%s: decoded %+v, %d, %v", tc.addr, got, n, err)
		}
		rd := bytes.NewReader(append(b, "payload"...))
		got, err = ReadRequest(rd)
		if err != nil || got != r || rd.Len() != len("payload") {
			t.Fatalf("%s: read %+v, %v, left %d", tc.addr, got, err, rd.Len())
		}
		if got.String() != net.JoinHostPort(strings.Trim(tc.addr[:strings.LastIndex(tc.addr, ":")], "[]"), tc.addr[strings.LastIndex(tc.addr, ":")+1:]) {
			t.Fatalf("String %q for %q", got.String(), tc.addr)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		addr string
		want error
	}{
		{"example.com", ErrBadAddress},
		{"example.com:0", ErrBadPort},
		{"example.com:http", ErrBadPort},
		{"example.com:65536", ErrBadPort},
		{"example.com:-1", ErrBadPort},
		{":80", ErrBadDomain},
		{strings.Repeat("a", 256) + ":80", ErrBadDomain},
		{"a\x00b:80", ErrBadDomain},
		{"a\nb:80", ErrBadDomain},
		{"[fe80::1%eth0]:80", ErrBadAddress},
	}
	for _, tc := range tests {
		if _, err := ParseRequest(tc.addr); !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.addr, err, tc.want)
		}
	}
	if _, err := AppendRequest(nil, Request{IP: netip.MustParseAddr("1.2.3.4"), Domain: "x", Port: 1}); !errors.Is(err, ErrBadAddress) {
		t.Errorf("IP and domain: %v", err)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	full, _ := AppendRequest(nil, Request{Domain: "example.com", Port: 443})
	for i := range len(full) {
		if _, _, err := DecodeRequest(full[:i]); !errors.Is(err, ErrTruncated) {
			t.Errorf("prefix %d: %v, want ErrTruncated", i, err)
		}
		if _, err := ReadRequest(bytes.NewReader(full[:i])); err == nil {
			t.Errorf("ReadRequest of prefix %d succeeded", i)
		}
	}
	tests := []struct {
		b    []byte
		want error
	}{
		{[]byte{2, 1, 1, 2, 3, 4, 0, 1}, ErrVersion},
		{[]byte{1, 0, 1, 2, 3, 4, 0, 1}, ErrAddrType},
		{[]byte{1, 5, 1, 2, 3, 4, 0, 1}, ErrAddrType},
		{[]byte{1, 3, 0, 0, 1}, ErrBadDomain},
		{[]byte{1, 3, 1, 0x7f, 0, 1}, ErrBadDomain},
		{[]byte{1, 1, 1, 2, 3, 4, 0, 0}, ErrBadPort},
	}
	for _, tc := range tests {
		if _, _, err := DecodeRequest(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("% x: %v, want %v", tc.b, err, tc.want)
		}
		if _, err := ReadRequest(bytes.NewReader(tc.b)); !errors.Is(err, tc.want) {
			t.Errorf("ReadRequest % x: %v, want %v", tc.b, err, tc.want)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	long := strings.Repeat("m", 300)
	for st := StatusOK; st <= maxStatus; st++ {
		for _, msg := range []string{"", "dial tcp: connection refused", long} {
			b := AppendReply(nil, st, msg)
			want := msg
			if st == StatusOK {
				want = ""
			}
			if len(want) > MaxMsgLen {
				want = want[:MaxMsgLen]
			}
			gotSt, gotMsg, n, err := DecodeReply(append(b, 'x'))
			if err != nil || gotSt != st || gotMsg != want || n != len(b) {
				t.Fatalf("%v %q: got %v %q %d %v", st, msg, gotSt, gotMsg, n, err)
			}
			rd := bytes.NewReader(append(b, 'x'))
			gotSt, gotMsg, err = ReadReply(rd)
			if err != nil || gotSt != st || gotMsg != want || rd.Len() != 1 {
				t.Fatalf("ReadReply %v %q: got %v %q %v", st, msg, gotSt, gotMsg, err)
			}
		}
	}
	if _, _, _, err := DecodeReply([]byte{1, 9, 0}); !errors.Is(err, ErrBadStatus) {
		t.Errorf("status 9: %v", err)
	}
	if _, _, _, err := DecodeReply([]byte{0, 0, 0}); !errors.Is(err, ErrVersion) {
		t.Errorf("version 0: %v", err)
	}
	if _, _, _, err := DecodeReply([]byte{1, 1, 5, 'a'}); !errors.Is(err, ErrTruncated) {
		t.Errorf("short message: %v", err)
	}
	if _, _, err := ReadReply(bytes.NewReader([]byte{1, 1, 5, 'a'})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadReply short message: %v", err)
	}
}

// FuzzDecodeRequest: decoding never panics, never reads past its own
// length, agrees with ReadRequest, and re-encodes to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "example.com:8080", "[::ffff:10.0.0.1]:1"} {
		r, _ := ParseRequest(a)
		b, _ := AppendRequest(nil, r)
		f.Add(b)
	}
	f.Add([]byte{1, 3, 0, 0, 80})
	f.Add([]byte{1, 3, 255})
	f.Add([]byte{2, 1, 1, 2, 3, 4, 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := DecodeRequest(b)
		rd := bytes.NewReader(b)
		r2, err2 := ReadRequest(rd)
		if err != nil {
			if err2 == nil {
				t.Fatalf("ReadRequest accepted what DecodeRequest refused (%v)", err)
			}
			return
		}
		if n < minRequestLen || n > MaxRequestLen || n > len(b) {
			t.Fatalf("length %d for %d bytes", n, len(b))
		}
		if err2 != nil || r2 != r || len(b)-rd.Len() != n {
			t.Fatalf("ReadRequest: %+v, %v, used %d; DecodeRequest: %+v, %d", r2, err2, len(b)-rd.Len(), r, n)
		}
		enc, err := AppendRequest(nil, r)
		if err != nil || !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoded %x, %v; want %x", enc, err, b[:n])
		}
	})
}

// FuzzRequestRoundTrip: any host:port ParseRequest accepts survives the
// wire unchanged.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add("example.com", uint16(443))
	f.Add("127.0.0.1", uint16(80))
	f.Add("::1", uint16(1))
	f.Add("", uint16(0))
	f.Fuzz(func(t *testing.T, host string, port uint16) {
		r, err := ParseRequest(net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return
		}
		b, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		got, n, err := DecodeRequest(b)
		if err != nil || n != len(b) || got != r {
			t.Fatalf("decoded %+v, %d, %v; want %+v", got, n, err, r)
		}
		back, err := ParseRequest(got.String())
		if err != nil || back != r {
			t.Fatalf("String %q parses to %+v, %v", got.String(), back, err)
		}
	})
}

// FuzzDecodeReply: never panics, agrees with ReadReply, round-trips.
func FuzzDecodeReply(f *testing.F) {
	f.Add(AppendReply(nil, StatusOK, ""))
	f.Add(AppendReply(nil, StatusConnectionRefused, "connection refused"))
	f.Add([]byte{1, 9, 0})
	f.Add([]byte{1, 1, 255, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, msg, n, err := DecodeReply(b)
		rd := bytes.NewReader(b)
		st2, msg2, err2 := ReadReply(rd)
		if err != nil {
			if err2 == nil {
				t.Fatalf("ReadReply accepted what DecodeReply refused (%v)", err)
			}
			return
		}
		if err2 != nil || st2 != st || msg2 != msg || len(b)-rd.Len() != n {
			t.Fatalf("ReadReply disagrees: %v %q %v", st2, msg2, err2)
		}
		if st == StatusOK && msg != "" {
			return // a peer may send it; we never do, so no round trip
		}
		if enc := AppendReply(nil, st, msg); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoded %x, want %x", enc, b[:n])
		}
	})
}
