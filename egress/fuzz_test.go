package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseNumericHost(f *testing.F) {
	for _, s := range []string{
		"2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.0.1.", "0x", "08",
		"4294967296", "1.2.3.4.5", "example.com", "::1", "fe80::1%eth0", "", ".", "..", "0x.0x",
		"1.2.3.0x1g", "000000000000000000000000000000000001", "0xFFFFFFFF", "1.2.65536",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, numeric, err := ParseNumericHost(s)
		if err != nil {
			if !numeric || addr.IsValid() || !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("%q: inconsistent failure %v, %v, %v", s, addr, numeric, err)
			}
			return
		}
		if !numeric {
			if addr.IsValid() {
				t.Fatalf("%q: name with an address %v", s, addr)
			}
			return
		}
		if !addr.IsValid() {
			t.Fatalf("%q: numeric without an address", s)
		}
		if lit, err := netip.ParseAddr(s); err == nil {
			if lit != addr {
				t.Fatalf("%q: got %v, netip says %v", s, addr, lit)
			}
			return
		}
		if !addr.Is4() {
			t.Fatalf("%q: legacy form gave non-IPv4 %v", s, addr)
		}
		// Canonical text round-trips.
		again, numeric, err := ParseNumericHost(addr.String())
		if err != nil || !numeric || again != addr {
			t.Fatalf("%q -> %v: reparse gave %v, %v, %v", s, addr, again, numeric, err)
		}
	})
}

// FuzzLegacyIPv4Forms builds every inet_aton spelling of a value and checks
// it parses back to that value.
func FuzzLegacyIPv4Forms(f *testing.F) {
	f.Add(uint32(0x7f000001), uint8(1), uint8(0), false)
	f.Add(uint32(0x7f000001), uint8(2), uint8(0b0110), true)
	f.Add(uint32(0xa9fea9fe), uint8(4), uint8(0b11100100), false)
	f.Add(uint32(0), uint8(3), uint8(0xff), true)
	f.Add(uint32(0xffffffff), uint8(1), uint8(1), false)
	f.Fuzz(func(t *testing.T, v uint32, nparts, radixes uint8, trailingDot bool) {
		n := int(nparts%4) + 1
		var parts []uint64
		rest := uint64(v)
		for i := 0; i < n-1; i++ {
			parts = append(parts, (rest>>(8*(3-i)))&0xff)
		}
		parts = append(parts, rest&(1<<(8*(5-n))-1))
		var b strings.Builder
		for i, p := range parts {
			if i > 0 {
				b.WriteByte('.')
			}
			switch (radixes >> (2 * i)) & 3 {
			case 0:
				fmt.Fprintf(&b, "%d", p)
			case 1:
				fmt.Fprintf(&b, "0%o", p)
			case 2:
				fmt.Fprintf(&b, "0x%x", p)
			case 3:
				fmt.Fprintf(&b, "0X%X", p)
			}
		}
		if trailingDot {
			b.WriteByte('.')
		}
		s := b.String()
		addr, numeric, err := ParseNumericHost(s)
		want := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if err != nil || !numeric || addr != want {
			t.Fatalf("%q: got %v, %v, %v; want %v", s, addr, numeric, err, want)
		}
		// The policy sees the same address however it is spelled.
		if (Policy{}).Check(addr) == nil != ((Policy{}).Check(want) == nil) {
			t.Fatalf("%q: verdict differs from %v", s, want)
		}
	})
}

func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{
		"127.0.0.0/8", "10.1.2.3", "::1", "fd00::/8", "::ffff:10.0.0.0/104", "10.1.2.3/8", "fe80::1%eth0",
		"", " ", "0.0.0.0/0", "::/0", "1.2.3.4/32,5.6.7.8", "10.0.0.0/8/8", "::ffff:0:0/95", "127.1", "2002::/16", "64:ff9b::/96",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries := strings.Split(s, ",")
		got, err := ParsePrefixes(entries)
		if err != nil {
			if !errors.Is(err, ErrInvalidPrefix) || got != nil {
				t.Fatalf("%q: bad failure %v, %v", s, got, err)
			}
			return
		}
		if len(got) != len(entries) {
			t.Fatalf("%q: %d prefixes from %d entries", s, len(got), len(entries))
		}
		if err := (Policy{Allow: got, Deny: nil}).Validate(); err != nil {
			t.Fatalf("%q: parsed prefixes fail Validate: %v", s, err)
		}
		for _, p := range got {
			if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("%q: non-canonical result %v", s, p)
			}
			again, err := ParsePrefixes([]string{p.String()})
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%q: %v does not round-trip: %v, %v", s, p, again, err)
			}
			// An allow entry opens its own network address, except for an
			// IPv4 address it embeds (2002::/16 holds 2002:: = 0.0.0.0).
			if err := (Policy{Allow: []netip.Prefix{p}}).Check(p.Addr()); err != nil {
				if de, ok := asDenied(err); !ok || !de.Embedded.IsValid() {
					t.Fatalf("%q: Allow %v does not open %v: %v", s, p, p.Addr(), err)
				}
			}
		}
	})
}

// FuzzCheck: zones and IPv4 mapping never change a verdict, and every
// refusal names a range that really holds the judged address.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1}, "")
	f.Add(netip.MustParseAddr("fe80::1").AsSlice(), "eth0")
	f.Add(netip.MustParseAddr("2002:7f00:1::1").AsSlice(), "x")
	f.Add(netip.MustParseAddr("64:ff9b::a9fe:a9fe").AsSlice(), "")
	f.Add(netip.MustParseAddr("2606:4700::1111").AsSlice(), "lo")
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		addr, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		var p Policy
		verdict := func(a netip.Addr) netip.Prefix {
			err := p.Check(a)
			if err == nil {
				return netip.Prefix{}
			}
			de, ok := asDenied(err)
			if !ok || !de.Range.IsValid() {
				t.Fatalf("Check(%v) = %v: not a DeniedError with a range", a, err)
			}
			judged := de.Addr.WithZone("").Unmap()
			if de.Embedded.IsValid() {
				judged = de.Embedded
			}
			if !de.Range.Contains(judged) {
				t.Fatalf("Check(%v): range %v does not hold %v", a, de.Range, judged)
			}
			return de.Range
		}
		base := verdict(addr)
		if addr.Is6() {
			if z := verdict(addr.WithZone(zone)); z != base {
				t.Fatalf("%v zone %q: verdict %v, without zone %v", addr, zone, z, base)
			}
		}
		if addr.Is4() {
			if m := verdict(netip.AddrFrom16(addr.As16())); m != base {
				t.Fatalf("%v mapped: verdict %v, unmapped %v", addr, m, base)
			}
		}
	})
}
