package egress

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// mustDenied asserts err is a *DeniedError honouring the cross-package
// contract (NotAllowed, errors.Is ErrDenied) and returns it.
func mustDenied(t *testing.T, err error) *DeniedError {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want *DeniedError")
	}
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (%T), want *DeniedError", err, err)
	}
	var na interface{ NotAllowed() bool }
	if !errors.As(err, &na) || !na.NotAllowed() {
		t.Fatalf("err = %v: NotAllowed() not true", err)
	}
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v: errors.Is(ErrDenied) false", err)
	}
	return de
}

func TestCheckDefaultDenied(t *testing.T) {
	tests := []struct {
		addr     string
		rng      string // expected matching range
		embedded string // expected embedded IPv4, if any
	}{
		{"127.0.0.1", "127.0.0.0/8", ""},
		{"127.255.255.254", "127.0.0.0/8", ""},
		{"0.0.0.0", "0.0.0.0/8", ""},
		{"::1", "::1/128", ""},
		{"::", "::/128", ""},
		{"10.1.2.3", "10.0.0.0/8", ""},
		{"172.16.0.1", "172.16.0.0/12", ""},
		{"172.31.255.255", "172.16.0.0/12", ""},
		{"192.168.1.1", "192.168.0.0/16", ""},
		{"100.64.0.1", "100.64.0.0/10", ""},
		{"100.127.255.255", "100.64.0.0/10", ""},
		{"100.100.100.200", "100.100.100.200/32", ""},
		{"169.254.169.254", "169.254.169.254/32", ""},
		{"169.254.1.1", "169.254.0.0/16", ""},
		{"192.0.0.192", "192.0.0.192/32", ""},
		{"168.63.129.16", "168.63.129.16/32", ""},
		{"fd00:ec2::254", "fd00:ec2::254/128", ""},
		{"fd12:3456::1", "fc00::/7", ""},
		{"fc00::1", "fc00::/7", ""},
		{"fe80::1", "fe80::/10", ""},
		{"fe80::1%eth0", "fe80::/10", ""}, // a zone must not hide the address
		{"fec0::1", "fec0::/10", ""},
		{"::ffff:127.0.0.1", "127.0.0.0/8", ""},
		{"::ffff:10.0.0.1", "10.0.0.0/8", ""},
		{"::ffff:169.254.169.254", "169.254.169.254/32", ""},
		{"::127.0.0.1", "::/96", ""},
		{"::8.8.8.8", "::/96", ""},
		{"::ffff:0:7f00:1", "::ffff:0:0:0/96", ""},
		{"64:ff9b::7f00:1", "127.0.0.0/8", "127.0.0.1"},
		{"64:ff9b::10.0.0.1", "10.0.0.0/8", "10.0.0.1"},
		{"64:ff9b::a9fe:a9fe", "169.254.169.254/32", "169.254.169.254"},
		{"64:ff9b:1::1:1", "64:ff9b:1::/48", ""},
		{"2002:7f00:1::1", "127.0.0.0/8", "127.0.0.1"},
		{"2002:a9fe:a9fe::1", "169.254.169.254/32", "169.254.169.254"},
		{"2002:c0a8:101::", "192.168.0.0/16", "192.168.1.1"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32", ""}, // Teredo
		{"2001:2::1", "2001:2::/48", ""},
		{"2001:db8::1", "2001:db8::/32", ""},
		{"3fff::1", "3fff::/20", ""},
		{"100::1", "100::/64", ""},
		{"5f00::1", "5f00::/16", ""},
		{"224.0.0.1", "224.0.0.0/4", ""},
		{"239.255.255.250", "224.0.0.0/4", ""},
		{"ff02::1", "ff00::/8", ""},
		{"ff05::1:3", "ff00::/8", ""},
		{"255.255.255.255", "255.255.255.255/32", ""},
		{"240.0.0.1", "240.0.0.0/4", ""},
		{"198.18.0.1", "198.18.0.0/15", ""},
		{"198.19.255.255", "198.18.0.0/15", ""},
		{"192.0.2.1", "192.0.2.0/24", ""},
		{"198.51.100.1", "198.51.100.0/24", ""},
		{"203.0.113.1", "203.0.113.0/24", ""},
		{"192.88.99.1", "192.88.99.0/24", ""},
		{"192.0.0.8", "192.0.0.0/24", ""},
	}
	var p Policy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			addr := netip.MustParseAddr(tt.addr)
			de := mustDenied(t, p.Check(addr))
			if de.Addr != addr {
				t.Errorf("Addr = %v, want %v", de.Addr, addr)
			}
			if want := netip.MustParsePrefix(tt.rng); de.Range != want {
				t.Errorf("Range = %v, want %v", de.Range, want)
			}
			var wantEmb netip.Addr
			if tt.embedded != "" {
				wantEmb = netip.MustParseAddr(tt.embedded)
			}
			if de.Embedded != wantEmb {
				t.Errorf("Embedded = %v, want %v", de.Embedded, wantEmb)
			}
			if de.Reason == "" {
				t.Error("empty Reason")
			}
		})
	}
}

func TestCheckPublicAllowed(t *testing.T) {
	// Boundary neighbours of the deny ranges catch a range written too wide.
	for _, s := range []string{
		"1.1.1.1", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001::200e",
		"::ffff:1.1.1.1", "64:ff9b::1.1.1.1", "2002:101:101::1",
		"1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
		"172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0",
		"192.0.1.255", "192.0.3.0", "198.17.255.255", "198.20.0.0",
		"223.255.255.255", "168.63.129.17", "168.63.129.15",
		"2001:1::1", "2001:3::1", "2001:db7:ffff::1", "2001:db9::1", "fbff::1", "fe00::1",
		"64:ff9b:2::1",
	} {
		if err := (Policy{}).Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", s, err)
		}
	}
}

func TestCheckInvalidAddrDenied(t *testing.T) {
	de := mustDenied(t, (Policy{}).Check(netip.Addr{}))
	if de.Range.IsValid() {
		t.Errorf("Range = %v, want zero", de.Range)
	}
}

func TestCheckAllowWins(t *testing.T) {
	p := Policy{Allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("169.254.169.254/32"),
	}}
	for _, s := range []string{
		"127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
		"fd00:ec2::254", "169.254.169.254", "::ffff:169.254.169.254",
	} {
		if err := p.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1", "::1", "fc00::1", "169.254.169.253", "::127.0.0.1"} {
		mustDenied(t, p.Check(netip.MustParseAddr(s)))
	}
}

func TestCheckAllowOnEmbeddingPrefixKeepsEmbeddedCheck(t *testing.T) {
	p := Policy{Allow: []netip.Prefix{
		netip.MustParsePrefix("2002::/16"),
		netip.MustParsePrefix("64:ff9b::/96"),
	}}
	for _, s := range []string{"2002:7f00:1::1", "64:ff9b::7f00:1"} {
		de := mustDenied(t, p.Check(netip.MustParseAddr(s)))
		if de.Embedded != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("%s: Embedded = %v, want 127.0.0.1", s, de.Embedded)
		}
	}
}

func TestCheckExtraDeny(t *testing.T) {
	p := Policy{
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.114.7/32")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("203.0.114.0/24")},
	}
	if err := p.Check(netip.MustParseAddr("203.0.114.7")); err != nil {
		t.Errorf("allowed address inside deny: %v", err)
	}
	for _, s := range []string{"203.0.114.8", "::ffff:203.0.114.8", "64:ff9b::203.0.114.8"} {
		de := mustDenied(t, p.Check(netip.MustParseAddr(s)))
		if de.Reason != reasonConfiguredDeny || de.Range != p.Deny[0] {
			t.Errorf("%s: Reason %q Range %v, want configured deny %v", s, de.Reason, de.Range, p.Deny[0])
		}
	}
	if err := p.Check(netip.MustParseAddr("203.0.115.1")); err != nil {
		t.Errorf("outside deny: %v", err)
	}
}

func TestDefaultDenied(t *testing.T) {
	list := DefaultDenied()
	if len(list) != len(defaultDenied) {
		t.Fatalf("len = %d, want %d", len(list), len(defaultDenied))
	}
	seen := map[netip.Prefix]bool{}
	for _, pr := range list {
		if err := checkCanonical(pr); err != nil {
			t.Errorf("%v: %v", pr, err)
		}
		if seen[pr] {
			t.Errorf("%v listed twice", pr)
		}
		seen[pr] = true
	}
	list[0] = netip.MustParsePrefix("1.1.1.1/32")
	if DefaultDenied()[0] == list[0] {
		t.Error("DefaultDenied returned shared storage")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{
		"127.0.0.0/8", " 10.1.2.3 ", "::1", "fd00::/8", "::ffff:10.0.0.0/104", "::ffff:1.2.3.4", "0.0.0.0/0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "10.1.2.3/32", "::1/128", "fd00::/8", "10.0.0.0/8", "1.2.3.4/32", "0.0.0.0/0"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != netip.MustParsePrefix(want[i]) {
			t.Errorf("entry %d = %v, want %s", i, got[i], want[i])
		}
	}
	if got, err := ParsePrefixes(nil); err != nil || len(got) != 0 {
		t.Errorf("ParsePrefixes(nil) = %v, %v", got, err)
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	for _, bad := range []string{
		"", "  ", "foo", "10.0.0.0/33", "::/129", "10.1.2.3/8", "fe80::1%eth0",
		"10.0.0.0/8/8", "127.1", "2130706433", "10.0.0.0/-1", "1.2.3.4/", "/8",
	} {
		_, err := ParsePrefixes([]string{"10.0.0.0/8", bad})
		if !errors.Is(err, ErrInvalidPrefix) {
			t.Errorf("%q: err = %v, want ErrInvalidPrefix", bad, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "egress: entry 1 ") || !strings.Contains(err.Error(), "\""+bad+"\"") {
			t.Errorf("%q: error %q does not name the entry", bad, err)
		}
	}
	_, err := ParsePrefixes([]string{"10.1.2.3/8"})
	if err == nil || !strings.Contains(err.Error(), "did you mean 10.0.0.0/8") {
		t.Errorf("host bits: err = %v, want a hint", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := Policy{
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("203.0.114.0/24")},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]Policy{
		"invalid allow":     {Allow: []netip.Prefix{{}}},
		"host bits":         {Allow: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.1.2.3"), 8)}},
		"mapped allow":      {Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}},
		"invalid deny":      {Deny: []netip.Prefix{{}}},
		"deny inside allow": {Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Deny: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		"deny equals allow": {Allow: []netip.Prefix{netip.MustParsePrefix("1.2.3.0/24")}, Deny: []netip.Prefix{netip.MustParsePrefix("1.2.3.0/24")}},
	}
	for name, p := range bad {
		err := p.Validate()
		if !errors.Is(err, ErrInvalidPrefix) && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidPrefix or ErrInvalidConfig", name, err)
		}
	}
	// A deny wider than an allow is the normal carve-out, not a contradiction.
	ok := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := ok.Validate(); err != nil {
		t.Errorf("carve-out: %v", err)
	}
}

func TestDeniedErrorMessage(t *testing.T) {
	tests := []struct {
		err  *DeniedError
		want string
	}{
		{&DeniedError{Addr: netip.MustParseAddr("127.0.0.1"), Range: netip.MustParsePrefix("127.0.0.0/8"), Reason: "loopback"},
			"egress: destination 127.0.0.1 refused: loopback (127.0.0.0/8)"},
		{&DeniedError{Host: "127.0.0.1", Addr: netip.MustParseAddr("127.0.0.1"), Range: netip.MustParsePrefix("127.0.0.0/8"), Reason: "loopback"},
			"egress: destination 127.0.0.1 refused: loopback (127.0.0.0/8)"},
		{&DeniedError{Host: "rebind.test", Addr: netip.MustParseAddr("127.0.0.1"), Range: netip.MustParsePrefix("127.0.0.0/8"), Reason: "loopback"},
			`egress: destination "rebind.test" (127.0.0.1) refused: loopback (127.0.0.0/8)`},
		{&DeniedError{Addr: netip.MustParseAddr("2002:7f00:1::1"), Embedded: netip.MustParseAddr("127.0.0.1"), Range: netip.MustParsePrefix("127.0.0.0/8"), Reason: "loopback"},
			"egress: destination 2002:7f00:1::1 embeds 127.0.0.1 refused: loopback (127.0.0.0/8)"},
		{&DeniedError{Reason: "invalid address"}, "egress: destination address refused: invalid address"},
		{&DeniedError{Host: "x", Reason: "invalid address"}, `egress: destination "x" refused: invalid address`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
