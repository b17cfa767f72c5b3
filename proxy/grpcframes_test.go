package proxy

import (
	"encoding/binary"
	"errors"
	"testing"
)

// grpcFrame is one length-prefixed message: flag, big-endian length, payload.
func grpcFrame(flag byte, payload []byte) []byte {
	b := make([]byte, grpcHeaderLen, grpcHeaderLen+len(payload))
	b[0] = flag
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload))) // #nosec G115 -- test payloads are small
	return append(b, payload...)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// feedAll feeds chunks in order and returns the messages seen and the first
// error.
func feedAll(f *GRPCFrames, chunks ...[]byte) ([]GRPCMessage, error) {
	var got []GRPCMessage
	var first error
	for _, c := range chunks {
		if err := f.Feed(c, func(m GRPCMessage) { got = append(got, m) }); err != nil && first == nil {
			first = err
		}
	}
	return got, first
}

func TestGRPCFrames(t *testing.T) {
	three := concat(grpcFrame(0, []byte("hello")), grpcFrame(1, make([]byte, 300)), grpcFrame(0, nil))
	want3 := []GRPCMessage{{1, false, 5}, {2, true, 300}, {3, false, 0}}
	tests := []struct {
		name    string
		max     uint32
		chunks  [][]byte
		want    []GRPCMessage
		wantErr error
	}{
		{name: "empty", chunks: [][]byte{nil, {}}},
		{name: "one message", chunks: [][]byte{grpcFrame(0, []byte("abc"))}, want: []GRPCMessage{{1, false, 3}}},
		{name: "three in one chunk", chunks: [][]byte{three}, want: want3},
		{name: "header split in every place", chunks: [][]byte{three[:1], three[1:2], three[2:4], three[4:5], three[5:]}, want: want3},
		{name: "byte by byte", chunks: bytewise(three), want: want3},
		{name: "payload split", chunks: [][]byte{three[:100], three[100:]}, want: want3},
		{name: "partial header only", chunks: [][]byte{{0, 0, 0}}},
		{name: "empty message then partial", chunks: [][]byte{concat(grpcFrame(0, nil), []byte{1, 0})}, want: []GRPCMessage{{1, false, 0}}},
		{name: "bad flag", chunks: [][]byte{{2, 0, 0, 0, 1, 'x'}}, wantErr: ErrGRPCFrameFlag},
		{name: "bad flag after a message", chunks: [][]byte{concat(grpcFrame(0, []byte("ok")), []byte{0x80, 0, 0, 0, 0})},
			want: []GRPCMessage{{1, false, 2}}, wantErr: ErrGRPCFrameFlag},
		{name: "too large", max: 4, chunks: [][]byte{grpcFrame(0, []byte("12345"))}, wantErr: ErrGRPCFrameTooLarge},
		{name: "at the limit", max: 5, chunks: [][]byte{grpcFrame(0, []byte("12345"))}, want: []GRPCMessage{{1, false, 5}}},
		{name: "largest length without a limit", chunks: [][]byte{{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}},
			want: []GRPCMessage{{1, false, 1<<32 - 1}}},
		{name: "stops after an error", chunks: [][]byte{{7, 0, 0, 0, 0}, grpcFrame(0, nil)}, wantErr: ErrGRPCFrameFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &GRPCFrames{Max: tt.max}
			got, err := feedAll(f, tt.chunks...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("messages %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if err != nil {
				// The error sticks: later input is not parsed.
				if again := f.Feed(grpcFrame(0, nil), func(GRPCMessage) { t.Error("callback after an error") }); !errors.Is(again, tt.wantErr) {
					t.Errorf("after the error Feed returned %v", again)
				}
			}
		})
	}
}

func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// FuzzGRPCFrames checks that where the stream is split does not change what
// is parsed: the messages and the error are those of the whole stream.
func FuzzGRPCFrames(f *testing.F) {
	f.Add(concat(grpcFrame(0, []byte("hello")), grpcFrame(1, []byte("world"))), 3, uint32(0))
	f.Add(concat(grpcFrame(0, nil), grpcFrame(0, nil), grpcFrame(0, []byte{1})), 5, uint32(0))
	f.Add([]byte{0, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 0, 0, 0, 0}, 12, uint32(0))
	f.Add(grpcFrame(0, make([]byte, 40)), 2, uint32(16))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, 4, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, split int, maxLen uint32) {
		whole, werr := feedAll(&GRPCFrames{Max: maxLen}, data)
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		parts, perr := feedAll(&GRPCFrames{Max: maxLen}, data[:split], data[split:])
		if (werr == nil) != (perr == nil) || (werr != nil && werr.Error() != perr.Error()) {
			t.Fatalf("split at %d: error %v, whole: %v", split, perr, werr)
		}
		if len(whole) != len(parts) {
			t.Fatalf("split at %d: %d messages, whole: %d", split, len(parts), len(whole))
		}
		for i := range whole {
			if whole[i] != parts[i] || whole[i].Index != int64(i+1) {
				t.Fatalf("split at %d: message %d is %+v, whole: %+v", split, i, parts[i], whole[i])
			}
			if maxLen > 0 && whole[i].Length > maxLen {
				t.Fatalf("message %d of %d bytes passed the limit %d", i, whole[i].Length, maxLen)
			}
		}
	})
}

// TestGRPCFramesFeedZeroAlloc guards the per-chunk cost on a gRPC stream:
// parsing keeps no payload and allocates nothing.
func TestGRPCFramesFeedZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	stream := concat(grpcFrame(0, make([]byte, 100)), grpcFrame(1, make([]byte, 7)), grpcFrame(0, nil))
	var f GRPCFrames
	var n int64
	fn := func(m GRPCMessage) { n += int64(m.Length) }
	got := testing.AllocsPerRun(100, func() {
		_ = f.Feed(stream[:3], fn)
		_ = f.Feed(stream[3:60], fn)
		_ = f.Feed(stream[60:], fn)
	})
	if got != 0 {
		t.Errorf("Feed allocates %.0f times per stream, want 0", got)
	}
	if n == 0 {
		t.Fatal("no message seen")
	}
}

func BenchmarkGRPCFramesFeed(b *testing.B) {
	stream := concat(grpcFrame(0, make([]byte, 1024)), grpcFrame(0, make([]byte, 16)))
	var f GRPCFrames
	fn := func(GRPCMessage) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		_ = f.Feed(stream, fn)
	}
}
