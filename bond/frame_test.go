package bond

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	ctl := []frame{
		{typ: frameAck, flags: flagFinAcked, rcvNext: 1, limit: 2, linkRecv: 3},
		{typ: framePing, token: 42},
		{typ: framePong, token: 43},
		{typ: frameFin, offset: 1 << 40},
		{typ: frameGoAway, code: 7},
		{typ: frameHello, version: Version, flags: flagNew, session: [16]byte{1, 2, 3}, rcvNext: 9},
		{typ: frameWelcome, version: Version, status: statusUnknownSession, rcvNext: 10},
	}
	var wire []byte
	for i := range ctl {
		wire = appendFrame(wire, &ctl[i])
	}
	data := []byte("hello, bonded world")
	wire = appendDataHeader(wire, 1234, len(data))
	wire = append(wire, data...)
	r := bytes.NewReader(wire)
	scratch := make([]byte, helloBody)
	for i, want := range ctl {
		got, err := readFrame(r, scratch)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.typ == frameHello {
			want.flags = got.flags // hello flags live in the body
		}
		if got.typ != want.typ || got.rcvNext != want.rcvNext || got.limit != want.limit ||
			got.linkRecv != want.linkRecv || got.token != want.token || got.offset != want.offset ||
			got.code != want.code || got.version != want.version || got.status != want.status ||
			got.session != want.session || got.flags != want.flags {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	got, err := readFrame(r, scratch)
	if err != nil || got.typ != frameData || got.offset != 1234 || !bytes.Equal(got.payload, data) {
		t.Fatalf("data frame: %+v %v", got, err)
	}
	if _, err := readFrame(r, scratch); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestFrameRejects(t *testing.T) {
	var h header
	cases := map[string][]byte{}
	h.encode(0x7f, 0, 8)
	cases["unknown type"] = append(h[:], make([]byte, 8)...)
	h.encode(frameData, 0, 8+MaxChunkSize+1)
	cases["oversized data"] = h[:]
	h.encode(frameData, 0, 8)
	cases["empty data"] = append(h[:], make([]byte, 8)...)
	h.encode(frameAck, 0, 23)
	cases["short ack"] = append(h[:], make([]byte, 23)...)
	hello := appendFrame(nil, &frame{typ: frameHello})
	hello[headerSize] = 'X'
	cases["bad magic"] = hello
	for name, wire := range cases {
		if _, err := readFrame(bytes.NewReader(wire), make([]byte, helloBody)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
	// A truncated body is an unexpected EOF, not a clean one.
	full := appendFrame(nil, &frame{typ: frameAck})
	if _, err := readFrame(bytes.NewReader(full[:len(full)-1]), make([]byte, helloBody)); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
}

// FuzzReadFrame: any byte string decodes to frames or a clean error,
// never a panic, and never allocates beyond a checked length.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, &frame{typ: frameAck, rcvNext: 1, limit: 2, linkRecv: 3}))
	f.Add(appendFrame(nil, &frame{typ: frameHello, version: Version, session: [16]byte{9}}))
	f.Add(append(appendDataHeader(nil, 7, 3), 'a', 'b', 'c'))
	f.Add([]byte{0x1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		scratch := make([]byte, helloBody)
		for {
			fr, err := readFrame(r, scratch)
			if err != nil {
				return
			}
			if fr.typ == frameData {
				if len(fr.payload) == 0 || len(fr.payload) > MaxChunkSize {
					t.Fatalf("data payload of %d bytes accepted", len(fr.payload))
				}
				continue
			}
			// Control frames re-encode to the bytes they came from,
			// but for reserved header bits.
			if fr.typ != frameHello {
				re := appendFrame(nil, &fr)
				if _, err := readFrame(bytes.NewReader(re), scratch); err != nil {
					t.Fatalf("re-encoded %v does not decode: %v", fr.typ, err)
				}
			}
		}
	})
}
