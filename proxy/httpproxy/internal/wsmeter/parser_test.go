package wsmeter

import (
	"bytes"
	"errors"
	"testing"
)

type parserCase struct {
	name   string
	mask   MaskPolicy
	stream []byte
	want   Stats // want.Err, when set, is a *ProtocolError compared by value
}

func perr(off int64, op byte, reason string) error {
	return &ProtocolError{Offset: off, Opcode: op, Reason: reason}
}

func parserCases() []parserCase {
	hello := []byte("Hello")
	p256 := bytes.Repeat([]byte{0xAB}, 256)
	p64k := bytes.Repeat([]byte{0xCD}, 65536)
	closeBye := closePayload(4001, "bye")
	return []parserCase{
		{
			// RFC 6455 §5.7: "A single-frame unmasked text message".
			name:   "unmasked text (RFC 6455 5.7)",
			stream: []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			want:   Stats{Bytes: 7, Frames: 1, Messages: 1},
		},
		{
			// RFC 6455 §5.7: "A single-frame masked text message".
			name:   "masked text (RFC 6455 5.7)",
			mask:   MaskRequired,
			stream: []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			want:   Stats{Bytes: 11, Frames: 1, Messages: 1},
		},
		{
			name:   "empty text frame",
			stream: frame(true, opText, false, nil),
			want:   Stats{Bytes: 2, Frames: 1, Messages: 1},
		},
		{
			// RFC 6455 §5.7: "256 bytes binary message in a single unmasked frame".
			name:   "16-bit length 256 unmasked",
			mask:   MaskForbidden,
			stream: frame(true, opBinary, false, p256),
			want:   Stats{Bytes: 4 + 256, Frames: 1, Messages: 1},
		},
		{
			name:   "16-bit length 256 masked",
			stream: frame(true, opBinary, true, p256),
			want:   Stats{Bytes: 8 + 256, Frames: 1, Messages: 1},
		},
		{
			// RFC 6455 §5.7: "64KiB binary message in a single unmasked frame".
			name:   "64-bit length 65536 unmasked",
			stream: frame(true, opBinary, false, p64k),
			want:   Stats{Bytes: 10 + 65536, Frames: 1, Messages: 1},
		},
		{
			name:   "64-bit length 65536 masked",
			mask:   MaskRequired,
			stream: frame(true, opBinary, true, p64k),
			want:   Stats{Bytes: 14 + 65536, Frames: 1, Messages: 1},
		},
		{
			// RFC 6455 §5.7: "A fragmented unmasked text message", in three frames.
			name: "fragmented message, 3 frames",
			stream: cat(
				frame(false, opText, true, []byte("Hel")),
				frame(false, opContinuation, true, []byte("l")),
				frame(true, opContinuation, true, []byte("o")),
			),
			want: Stats{Bytes: 9 + 7 + 7, Frames: 3, Messages: 1},
		},
		{
			// §5.4: "Control frames MAY be injected in the middle of a fragmented message."
			name: "ping and pong inside a fragmented message",
			stream: cat(
				frame(false, opBinary, false, []byte("ab")),
				frame(true, opPing, false, hello),
				frame(false, opContinuation, false, []byte("cd")),
				frame(true, opPong, false, hello),
				frame(true, opContinuation, false, []byte("ef")),
				frame(true, opText, false, []byte("next")),
			),
			want: Stats{Bytes: 4 + 7 + 4 + 7 + 4 + 6, Frames: 6, Messages: 2},
		},
		{
			name:   "close 1000 with reason",
			stream: frame(true, opClose, false, closePayload(1000, "normal")),
			want:   Stats{Bytes: 2 + 8, Frames: 1, CloseCode: 1000, CloseReasonLen: 6},
		},
		{
			name:   "close with empty payload is 1005",
			stream: frame(true, opClose, false, nil),
			want:   Stats{Bytes: 2, Frames: 1, CloseCode: 1005},
		},
		{
			// The masked code bytes are 0x0f^0x37, 0xa1^0xfa: read raw they would be 0x385b.
			name:   "masked close 4001 is unmasked",
			mask:   MaskRequired,
			stream: frame(true, opClose, true, closeBye),
			want:   Stats{Bytes: 2 + 4 + 5, Frames: 1, CloseCode: 4001, CloseReasonLen: 3},
		},
		{
			name: "only the first close frame is recorded",
			stream: cat(
				frame(true, opText, false, hello),
				frame(true, opClose, false, closePayload(1001, "")),
				frame(true, opClose, false, closePayload(1000, "late")),
			),
			want: Stats{Bytes: 7 + 4 + 8, Frames: 3, Messages: 1, CloseCode: 1001},
		},
		{
			name:   "masked close with a code and no reason",
			stream: frame(true, opClose, true, closePayload(3000, "")),
			want:   Stats{Bytes: 2 + 4 + 2, Frames: 1, CloseCode: 3000},
		},
		{
			name:   "truncated header counts bytes only",
			stream: frame(true, opBinary, true, p256)[:5],
			want:   Stats{Bytes: 5},
		},
		{
			name:   "truncated payload is not a frame",
			stream: frame(true, opBinary, false, p256)[:100],
			want:   Stats{Bytes: 100},
		},
		{
			name:   "truncated close keeps no code",
			stream: frame(true, opClose, false, closePayload(1000, "x"))[:3],
			want:   Stats{Bytes: 3, CloseReasonLen: 1},
		},
		{
			name:   "reserved data opcode 0x3",
			stream: cat(frame(true, opText, false, hello), frame(true, 0x3, false, hello), frame(true, opText, false, hello)),
			want:   Stats{Bytes: 21, Frames: 1, Messages: 1, Err: perr(7, 0x3, "reserved opcode")},
		},
		{
			name:   "reserved control opcode 0xB",
			stream: frame(true, 0xB, false, nil),
			want:   Stats{Bytes: 2, Err: perr(0, 0xB, "reserved opcode")},
		},
		{
			name:   "control frame of 126 bytes",
			stream: cat(frame(true, opPing, false, bytes.Repeat([]byte{1}, 126)), frame(true, opText, false, hello)),
			want:   Stats{Bytes: 4 + 126 + 7, Err: perr(0, opPing, "control frame payload longer than 125 bytes")},
		},
		{
			name:   "control frame of 125 bytes is fine",
			stream: frame(true, opPong, false, bytes.Repeat([]byte{1}, 125)),
			want:   Stats{Bytes: 2 + 125, Frames: 1},
		},
		{
			name:   "fragmented control frame",
			stream: frame(false, opPing, false, hello),
			want:   Stats{Bytes: 7, Err: perr(0, opPing, "fragmented control frame")},
		},
		{
			name:   "64-bit length with MSB set",
			stream: []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x'},
			want:   Stats{Bytes: 11, Err: perr(0, opBinary, "64-bit payload length with the most significant bit set")},
		},
		{
			name:   "close payload of 1 byte",
			stream: frame(true, opClose, false, []byte{3}),
			want:   Stats{Bytes: 3, Err: perr(0, opClose, "close frame payload of 1 byte")},
		},
		{
			name:   "continuation without a message",
			stream: frame(true, opContinuation, false, hello),
			want:   Stats{Bytes: 7, Err: perr(0, opContinuation, "continuation frame outside a fragmented message")},
		},
		{
			name:   "new message inside a fragmented one",
			stream: cat(frame(false, opText, false, hello), frame(true, opBinary, false, hello)),
			want:   Stats{Bytes: 14, Frames: 1, Err: perr(7, opBinary, "data frame inside a fragmented message")},
		},
		{
			name:   "unmasked client frame",
			mask:   MaskRequired,
			stream: cat(frame(true, opText, true, hello), frame(true, opText, false, hello)),
			want:   Stats{Bytes: 11 + 7, Frames: 1, Messages: 1, Err: perr(11, opText, "unmasked frame where masking is required")},
		},
		{
			name:   "masked server frame",
			mask:   MaskForbidden,
			stream: frame(true, opClose, true, closeBye),
			want:   Stats{Bytes: 11, Err: perr(0, opClose, "masked frame where masking is forbidden")},
		},
		{
			name: "error after a close keeps the close code",
			stream: cat(
				frame(true, opClose, false, closePayload(1000, "")),
				frame(true, 0x7, false, nil),
			),
			want: Stats{Bytes: 6, Frames: 1, CloseCode: 1000, Err: perr(4, 0x7, "reserved opcode")},
		},
	}
}

// feedChunks feeds stream in chunks of size n (n <= 0: whole) and checks
// that exactly the call that finds a violation returns it.
func feedChunks(t testing.TB, p *Parser, stream []byte, n int) Stats {
	t.Helper()
	if n <= 0 {
		n = len(stream) + 1
	}
	var errs []error
	for len(stream) > 0 {
		k := min(n, len(stream))
		if err := p.Feed(stream[:k]); err != nil {
			errs = append(errs, err)
		}
		stream = stream[k:]
	}
	s := p.Stats()
	switch {
	case len(errs) > 1:
		t.Errorf("Feed returned %d errors, want at most one: %v", len(errs), errs)
	case len(errs) == 1 && !errors.Is(errs[0], s.Err):
		t.Errorf("Feed returned %v, Stats().Err = %v", errs[0], s.Err)
	case len(errs) == 0 && s.Err != nil:
		t.Errorf("Stats().Err = %v but no Feed call returned it", s.Err)
	}
	return s
}

func TestParser(t *testing.T) {
	for _, tc := range parserCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 2, 3, 5, 7, 13, 1024} {
				p := Parser{Mask: tc.mask}
				got := feedChunks(t, &p, tc.stream, chunk)
				if err := sameStats(got, tc.want); err != nil {
					t.Errorf("chunk %d: %v", chunk, err)
				}
				if tc.want.Err != nil && !errors.Is(got.Err, ErrProtocol) {
					t.Errorf("chunk %d: errors.Is(%v, ErrProtocol) = false", chunk, got.Err)
				}
			}
		})
	}
}

// TestParserEverySplit feeds every case in two chunks split at every offset.
func TestParserEverySplit(t *testing.T) {
	for _, tc := range parserCases() {
		if len(tc.stream) > 4096 {
			continue // the 64 KiB cases: chunk sizes above cover them
		}
		for i := range len(tc.stream) + 1 {
			p := Parser{Mask: tc.mask}
			_ = p.Feed(tc.stream[:i])
			_ = p.Feed(tc.stream[i:])
			if err := sameStats(p.Stats(), tc.want); err != nil {
				t.Fatalf("%s, split at %d: %v", tc.name, i, err)
			}
		}
	}
}

func TestParserMatchesReference(t *testing.T) {
	for _, tc := range parserCases() {
		if err := sameStats(refParse(tc.stream, tc.mask), tc.want); err != nil {
			t.Errorf("%s: reference parser: %v", tc.name, err)
		}
	}
}

func TestProtocolErrorText(t *testing.T) {
	var p Parser
	err := p.Feed(frame(true, 0xB, false, nil))
	const want = "websocket protocol error: reserved opcode (opcode 0xb, frame at byte 0)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if err := p.Feed([]byte{0x81, 0x00}); err != nil {
		t.Fatalf("Feed after a violation returned %v, want nil", err)
	}
	if s := p.Stats(); s.Bytes != 4 || s.Frames != 0 {
		t.Fatalf("after a violation Stats = %+v, want 4 bytes and no frames", s)
	}
}

func TestParseCloseCode(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		code    int
		ok      bool
	}{
		{nil, 1005, true},
		{[]byte{0x03}, 0, false},
		{[]byte{0x03, 0xE8}, 1000, true},
		{closePayload(4001, "bye"), 4001, true},
		{[]byte{0xFF, 0xFF}, 65535, true},
	} {
		code, ok := ParseCloseCode(tc.payload)
		if code != tc.code || ok != tc.ok {
			t.Errorf("ParseCloseCode(% x) = %d, %v; want %d, %v", tc.payload, code, ok, tc.code, tc.ok)
		}
	}
}

// TestFeedAllocs guards the hot path: Feed allocates nothing, on valid
// streams or when it reports a violation.
func TestFeedAllocs(t *testing.T) {
	stream := benchStream(64, 1024)
	var p Parser
	p.Mask = MaskRequired
	if n := testing.AllocsPerRun(100, func() {
		for b := stream; len(b) > 0; b = b[min(len(b), 1500):] {
			_ = p.Feed(b[:min(len(b), 1500)])
		}
	}); n != 0 {
		t.Errorf("Feed on valid frames: %v allocs per run, want 0", n)
	}
	bad := frame(true, 0x3, false, nil)
	if n := testing.AllocsPerRun(100, func() {
		var q Parser
		if q.Feed(bad) == nil {
			t.Fatal("no error")
		}
	}); n != 0 {
		t.Errorf("Feed reporting a violation: %v allocs per run, want 0", n)
	}
}

func FuzzParser(f *testing.F) {
	var split uint16
	for _, tc := range parserCases() {
		if len(tc.stream) <= 1024 {
			split += 3
			f.Add(tc.stream, split, uint8(tc.mask))
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte, split uint16, mask uint8) {
		policy := MaskPolicy(mask % 3)
		whole := Parser{Mask: policy}
		_ = whole.Feed(stream)
		want := whole.Stats()

		i := int(split) % (len(stream) + 1)
		halves := Parser{Mask: policy}
		_ = halves.Feed(stream[:i])
		_ = halves.Feed(stream[i:])
		if err := sameStats(halves.Stats(), want); err != nil {
			t.Fatalf("split at %d vs whole: %v", i, err)
		}
		if err := sameStats(refParse(stream, policy), want); err != nil {
			t.Fatalf("reference vs Parser: %v", err)
		}
		if want.Bytes != int64(len(stream)) || want.Messages > want.Frames || want.CloseCode < 0 || want.CloseCode > 0xFFFF {
			t.Fatalf("impossible stats %+v for %d bytes", want, len(stream))
		}
		if want.Err != nil && !errors.Is(want.Err, ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", want.Err)
		}
	})
}
