package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fakeDNS is a tiny authoritative DNS server on a loopback UDP socket that
// answers A and AAAA queries from a fixed table, so tests resolve names
// without ever sending a packet off the machine.
type fakeDNS struct {
	pc      net.PacketConn
	records map[string][]netip.Addr // lower-case name without trailing dot
	done    chan struct{}
}

// startFakeDNS serves records until the test ends.
func startFakeDNS(t *testing.T, records map[string][]netip.Addr) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeDNS{pc: pc, records: records, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

// resolver returns a pure-Go resolver whose every connection goes to s,
// whatever /etc/resolv.conf names.
func (s *fakeDNS) resolver() *net.Resolver {
	addr := s.pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp4", addr)
		},
	}
}

func (s *fakeDNS) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.pc.WriteTo(resp, from)
		}
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
)

// answer builds the response to one query; ok is false for garbage, which
// is dropped.
func (s *fakeDNS) answer(q []byte) ([]byte, bool) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, false
	}
	// Read the question name: uncompressed labels up to a zero byte.
	var labels []string
	off := 12
	for {
		if off >= len(q) {
			return nil, false
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(q) {
			return nil, false
		}
		labels = append(labels, string(q[off:off+l]))
		off += l
	}
	if off+4 > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[off : off+2])
	question := q[12 : off+4]
	name := strings.ToLower(strings.Join(labels, "."))

	addrs, known := s.records[name]
	var answers []netip.Addr
	for _, a := range addrs {
		if (qtype == dnsTypeA && a.Is4()) || (qtype == dnsTypeAAAA && a.Is6()) {
			answers = append(answers, a)
		}
	}
	resp := make([]byte, 12, 12+len(question)+len(answers)*28)
	copy(resp[0:2], q[0:2])                                                        // ID
	flags := uint16(0x8000|0x0400|0x0080) | binary.BigEndian.Uint16(q[2:4])&0x0100 // QR AA RA, copy RD
	if !known {
		flags |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(resp[2:4], flags)
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		rdata := a.AsSlice()
		resp = append(resp, 0xc0, 12) // name: pointer to the question
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp, true
}

// TestFakeDNS checks the test server itself, so a resolver failure in the
// dial tests cannot be mistaken for a policy decision.
func TestFakeDNS(t *testing.T) {
	s := startFakeDNS(t, map[string][]netip.Addr{
		"rebind.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	r := s.resolver()
	got, err := r.LookupNetIP(context.Background(), "ip", "rebind.test")
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]bool{netip.MustParseAddr("127.0.0.1"): true, netip.MustParseAddr("::1"): true}
	if len(got) != 2 || !want[got[0].Unmap()] || !want[got[1].Unmap()] {
		t.Fatalf("LookupNetIP = %v, want 127.0.0.1 and ::1", got)
	}
	_, err = r.LookupNetIP(context.Background(), "ip", "missing.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("missing name: err = %v, want not found", err)
	}
}
