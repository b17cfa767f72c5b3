package proxy

import (
	"errors"
	"fmt"
)

// grpcHeaderLen is the size of a gRPC message prefix: a 1-byte
// Compressed-Flag and a 4-byte big-endian Message-Length
// (PROTOCOL-HTTP2.md: Length-Prefixed-Message).
const grpcHeaderLen = 5

// Errors of GRPCFrames: the stream is not a sequence of gRPC
// length-prefixed messages.
var (
	// ErrGRPCFrameFlag: a Compressed-Flag other than 0 or 1.
	ErrGRPCFrameFlag = errors.New("grpc frame: invalid compressed flag")
	// ErrGRPCFrameTooLarge: a Message-Length above GRPCFrames.Max.
	ErrGRPCFrameTooLarge = errors.New("grpc frame: message too large")
)

// GRPCMessage describes one length-prefixed message of a gRPC stream.
type GRPCMessage struct {
	// Index counts the messages of the stream from 1.
	Index int64
	// Compressed is the Compressed-Flag: the payload is compressed with the
	// call's grpc-encoding.
	Compressed bool
	// Length is the Message-Length: the payload's size on the wire.
	Length uint32
}

// GRPCFrames follows the length-prefixed messages of one direction of a gRPC
// stream as its bytes pass, in chunks of any size, without keeping payloads
// and without allocating. The zero value is ready to use. It is not safe for
// concurrent use: each direction of a call has its own.
type GRPCFrames struct {
	// Max is the largest Message-Length accepted; a larger one stops parsing
	// with ErrGRPCFrameTooLarge. Zero: any 32-bit length.
	Max uint32

	hdr   [grpcHeaderLen]byte
	held  int    // bytes of hdr filled
	skip  uint32 // payload bytes of the current message still to pass
	count int64  // messages seen
	err   error
}

// Feed parses p, the next bytes of the stream, calling fn once for each
// message whose 5-byte prefix completes in p (before its payload has
// passed). After malformed input it returns the error, now and on every later
// call, and calls fn no more; the bytes themselves are the caller's to pass
// on regardless.
func (f *GRPCFrames) Feed(p []byte, fn func(GRPCMessage)) error {
	if f.err != nil {
		return f.err
	}
	for len(p) > 0 {
		if f.skip > 0 {
			n := f.skip
			if uint64(len(p)) < uint64(n) {
				n = uint32(len(p)) // #nosec G115 -- len(p) < n, a uint32
			}
			f.skip -= n
			p = p[n:]
			continue
		}
		c := copy(f.hdr[f.held:], p)
		f.held += c
		p = p[c:]
		if f.held < grpcHeaderLen {
			return nil
		}
		f.held = 0
		flag := f.hdr[0]
		length := uint32(f.hdr[1])<<24 | uint32(f.hdr[2])<<16 | uint32(f.hdr[3])<<8 | uint32(f.hdr[4])
		switch {
		case flag > 1:
			// Compressed-Flag: "a value of 1 indicates that the binary octet
			// sequence of Message is compressed"; 0 that it is not.
			f.err = fmt.Errorf("%w: 0x%02x after %d messages", ErrGRPCFrameFlag, flag, f.count)
			return f.err
		case f.Max > 0 && length > f.Max:
			f.err = fmt.Errorf("%w: %d bytes, limit %d", ErrGRPCFrameTooLarge, length, f.Max)
			return f.err
		}
		f.count++
		f.skip = length
		fn(GRPCMessage{Index: f.count, Compressed: flag == 1, Length: length})
	}
	return nil
}
