package bond

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Version is the wire protocol version carried in every link's hello.
// A peer speaking another version is refused with statusBadVersion.
const Version = 1

// helloMagic opens every link so a stray connection is told apart from a
// braid peer before anything is allocated for it.
var helloMagic = [4]byte{'b', 'r', 'd', 'B'}

// frameType says what a frame's body holds.
type frameType uint8

const (
	// frameData: offset u64 | payload. The payload is the stream bytes
	// [offset, offset+len). Never empty, at most MaxChunkSize bytes.
	frameData frameType = 0x1
	// frameAck: rcvNext u64 | limit u64 | linkRecv u64. rcvNext is the
	// cumulative stream ack, limit the receive window's right edge (the
	// sender may send bytes below it), linkRecv the DATA payload bytes
	// received on the link this ACK travels on. flagFinAcked: the FIN
	// arrived.
	frameAck frameType = 0x2
	// framePing: token u64, echoed by framePong to measure the link's RTT.
	framePing frameType = 0x3
	// framePong: token u64 copied from the ping.
	framePong frameType = 0x4
	// frameFin: final offset u64: the sender will never write at or past it.
	frameFin frameType = 0x5
	// frameGoAway: code u32. The session is over; the sender closes its
	// links after it. Data the peer already acknowledged is delivered.
	frameGoAway frameType = 0x6
	// frameHello: magic [4] | version u8 | flags u8 | session id [16] |
	// rcvNext u64. First frame of every link, client to exit.
	frameHello frameType = 0x7
	// frameWelcome: version u8 | status u8 | rcvNext u64. The exit's
	// answer to frameHello; nothing else is sent before it.
	frameWelcome frameType = 0x8
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "DATA"
	case frameAck:
		return "ACK"
	case framePing:
		return "PING"
	case framePong:
		return "PONG"
	case frameFin:
		return "FIN"
	case frameGoAway:
		return "GOAWAY"
	case frameHello:
		return "HELLO"
	case frameWelcome:
		return "WELCOME"
	}
	return fmt.Sprintf("frameType(%#x)", uint8(t))
}

// Frame flags.
const (
	flagFinAcked = 0x1 // on frameAck
	flagNew      = 0x1 // on frameHello: the client opens a new session
)

// Welcome statuses.
const (
	statusOK             = 0
	statusBadVersion     = 1
	statusUnknownSession = 2
	statusBusy           = 3
)

// MaxChunkSize bounds a DATA frame's payload; the decoder refuses longer
// frames before allocating.
const MaxChunkSize = 64 << 10

// header is the fixed 8-byte prefix of every frame:
//
//	0       1       2               4                               8
//	+-------+-------+-------+-------+-------+-------+-------+-------+
//	| type  | flags |   reserved    |         body length           |
//	+-------+-------+-------+-------+-------+-------+-------+-------+
//	| body (length bytes, layout by type; integers big-endian) ...
type header [headerSize]byte

const headerSize = 8

func (h header) Type() frameType { return frameType(h[0]) }
func (h header) Flags() uint8    { return h[1] }
func (h header) Length() uint32  { return binary.BigEndian.Uint32(h[4:8]) }

func (h *header) encode(t frameType, flags uint8, length int) {
	h[0], h[1], h[2], h[3] = byte(t), flags, 0, 0
	binary.BigEndian.PutUint32(h[4:8], uint32(length))
}

// Fixed body sizes; DATA is 8 + payload.
const (
	ackBody     = 24
	pingBody    = 8
	finBody     = 8
	goAwayBody  = 4
	helloBody   = 4 + 1 + 1 + 16 + 8
	welcomeBody = 1 + 1 + 8
)

// frame is a decoded frame. Only the fields of its type are meaningful.
type frame struct {
	typ   frameType
	flags uint8

	offset  uint64 // DATA, FIN (final offset)
	payload []byte // DATA

	rcvNext  uint64 // ACK, HELLO, WELCOME
	limit    uint64 // ACK
	linkRecv uint64 // ACK
	token    uint64 // PING, PONG
	code     uint32 // GOAWAY

	version uint8    // HELLO, WELCOME
	status  uint8    // WELCOME
	session [16]byte // HELLO
}

// bodyLimits returns the smallest and largest body length of a type.
func bodyLimits(t frameType) (min, max int, ok bool) {
	switch t {
	case frameData:
		return 9, 8 + MaxChunkSize, true
	case frameAck:
		return ackBody, ackBody, true
	case framePing, framePong:
		return pingBody, pingBody, true
	case frameFin:
		return finBody, finBody, true
	case frameGoAway:
		return goAwayBody, goAwayBody, true
	case frameHello:
		return helloBody, helloBody, true
	case frameWelcome:
		return welcomeBody, welcomeBody, true
	}
	return 0, 0, false
}

// readFrame decodes one frame. scratch must hold at least helloBody bytes;
// control bodies are read into it, a DATA payload gets its own allocation
// of exactly its checked length (it is handed to the reader of the stream).
func readFrame(r io.Reader, scratch []byte) (frame, error) {
	var h header
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: h.Type(), flags: h.Flags()}
	n := h.Length()
	lo, hi, ok := bodyLimits(f.typ)
	if !ok {
		return frame{}, fmt.Errorf("%w: unknown frame type %#x", ErrProtocol, uint8(f.typ))
	}
	if n < uint32(lo) || n > uint32(hi) {
		return frame{}, fmt.Errorf("%w: %v body of %d bytes (want %d..%d)", ErrProtocol, f.typ, n, lo, hi)
	}
	if f.typ == frameData {
		var off [8]byte
		if _, err := io.ReadFull(r, off[:]); err != nil {
			return frame{}, unexpected(err)
		}
		f.offset = binary.BigEndian.Uint64(off[:])
		f.payload = make([]byte, n-8)
		if _, err := io.ReadFull(r, f.payload); err != nil {
			return frame{}, unexpected(err)
		}
		if f.offset+uint64(len(f.payload)) < f.offset {
			return frame{}, fmt.Errorf("%w: DATA offset overflows", ErrProtocol)
		}
		return f, nil
	}
	b := scratch[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return frame{}, unexpected(err)
	}
	be := binary.BigEndian
	switch f.typ {
	case frameAck:
		f.rcvNext, f.limit, f.linkRecv = be.Uint64(b), be.Uint64(b[8:]), be.Uint64(b[16:])
	case framePing, framePong:
		f.token = be.Uint64(b)
	case frameFin:
		f.offset = be.Uint64(b)
	case frameGoAway:
		f.code = be.Uint32(b)
	case frameHello:
		if [4]byte(b[:4]) != helloMagic {
			return frame{}, fmt.Errorf("%w: bad hello magic", ErrProtocol)
		}
		f.version = b[4]
		f.flags = b[5]
		copy(f.session[:], b[6:22])
		f.rcvNext = be.Uint64(b[22:])
	case frameWelcome:
		f.version, f.status = b[0], b[1]
		f.rcvNext = be.Uint64(b[2:])
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends the encoding of a control frame (any type but DATA)
// to b.
func appendFrame(b []byte, f *frame) []byte {
	be := binary.BigEndian
	var h header
	switch f.typ {
	case frameAck:
		h.encode(f.typ, f.flags, ackBody)
		b = append(b, h[:]...)
		b = be.AppendUint64(b, f.rcvNext)
		b = be.AppendUint64(b, f.limit)
		return be.AppendUint64(b, f.linkRecv)
	case framePing, framePong:
		h.encode(f.typ, 0, pingBody)
		return be.AppendUint64(append(b, h[:]...), f.token)
	case frameFin:
		h.encode(f.typ, 0, finBody)
		return be.AppendUint64(append(b, h[:]...), f.offset)
	case frameGoAway:
		h.encode(f.typ, 0, goAwayBody)
		return be.AppendUint32(append(b, h[:]...), f.code)
	case frameHello:
		h.encode(f.typ, 0, helloBody)
		b = append(b, h[:]...)
		b = append(b, helloMagic[:]...)
		b = append(b, f.version, f.flags)
		b = append(b, f.session[:]...)
		return be.AppendUint64(b, f.rcvNext)
	case frameWelcome:
		h.encode(f.typ, 0, welcomeBody)
		b = append(b, h[:]...)
		b = append(b, f.version, f.status)
		return be.AppendUint64(b, f.rcvNext)
	}
	panic("bond: appendFrame of " + f.typ.String())
}

// appendDataHeader appends a DATA frame's header and offset; the payload
// follows it on the wire.
func appendDataHeader(b []byte, offset uint64, n int) []byte {
	var h header
	h.encode(frameData, 0, 8+n)
	return binary.BigEndian.AppendUint64(append(b, h[:]...), offset)
}
