package egress

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseNumericHost(t *testing.T) {
	valid := map[string]string{
		"2130706433":           "127.0.0.1",
		"0x7f000001":           "127.0.0.1",
		"0X7F000001":           "127.0.0.1",
		"0177.0.0.1":           "127.0.0.1",
		"0177.0000.0.01":       "127.0.0.1",
		"127.1":                "127.0.0.1",
		"127.0.1":              "127.0.0.1",
		"0x7f.1":               "127.0.0.1",
		"0x7f.0x0.0x0.0x1":     "127.0.0.1",
		"017700000001":         "127.0.0.1",
		"127.000.000.001":      "127.0.0.1",
		"127.0.0.1.":           "127.0.0.1",
		"0x00000000007f000001": "127.0.0.1",
		"0":                    "0.0.0.0",
		"00":                   "0.0.0.0",
		"0x":                   "0.0.0.0",
		"4294967295":           "255.255.255.255",
		"0xffffffff":           "255.255.255.255",
		"037777777777":         "255.255.255.255",
		"169.254.43518":        "169.254.169.254",
		"0xa9.0xfe.0xa9.0xfe":  "169.254.169.254",
		"10.0x10203":           "10.1.2.3",
		"1.2.65535":            "1.2.255.255",
		"1.2.3.4":              "1.2.3.4",
		"::1":                  "::1",
		"::ffff:127.0.0.1":     "::ffff:127.0.0.1",
		"fe80::1%eth0":         "fe80::1%eth0",
	}
	for in, want := range valid {
		got, numeric, err := ParseNumericHost(in)
		if err != nil || !numeric || got != netip.MustParseAddr(want) {
			t.Errorf("ParseNumericHost(%q) = %v, %v, %v; want %s", in, got, numeric, err, want)
		}
	}

	names := []string{
		"", ".", "example.com", "rebind.test", "localhost", "deadbeef", "x7f000001",
		"127.0.0.1..", "1.2.3.4.example", "0x7f.example", "1.2.3.0x1g", "1e100", "a.b-1",
		"[::1]", "1.2.3.4%eth0", "127.0.0.1 ",
	}
	for _, in := range names {
		got, numeric, err := ParseNumericHost(in)
		if err != nil || numeric || got.IsValid() {
			t.Errorf("ParseNumericHost(%q) = %v, %v, %v; want a name", in, got, numeric, err)
		}
	}

	invalid := []string{
		"4294967296", "0x100000000", "256.0.0.1", "1.256.0.0", "1.2.3.256", "1.2.65536",
		"1.16777216", "1.2.3.4.5", "1..2", ".1", "08", "0x7f.08", "foo.1", "99999999999999999999",
		"1.2.3.4.5.", "-1", "1.-1",
	}
	for _, in := range invalid {
		got, numeric, err := ParseNumericHost(in)
		if in == "-1" || in == "1.-1" {
			// "-1" is not a numeric label: a name, which no resolver accepts.
			if err != nil || numeric {
				t.Errorf("ParseNumericHost(%q) = %v, %v, %v; want a name", in, got, numeric, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidAddress) || !numeric || got.IsValid() {
			t.Errorf("ParseNumericHost(%q) = %v, %v, %v; want ErrInvalidAddress", in, got, numeric, err)
		}
	}
}
