// Package wsmeter measures a WebSocket connection that tracecar passes through
// as raw bytes after the HTTP/1.1 upgrade.
//
// A [Parser] reads RFC 6455 frame headers from a byte stream fed in arbitrary
// chunks and counts bytes, frames and messages, and records the close status
// code. It skips payloads without reading them (except the two bytes of a
// close code), so its cost is per frame, not per byte, and it never
// allocates.
// A [Conn] wraps the hijacked client connection with one Parser per
// direction, so the span that covers the connection can report both sides.
//
// The meter observes and never interferes: bytes always pass unchanged, and a
// protocol violation stops parsing for that direction (recorded in
// [Stats].Err) while the connection keeps being served. Failing the
// connection is the job of the two WebSocket endpoints.
package wsmeter

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrProtocol is the sentinel wrapped by every [*ProtocolError]: the stream
// broke an RFC 6455 rule that is visible in a frame header.
var ErrProtocol = errors.New("websocket protocol error")

// ProtocolError describes the first RFC 6455 violation found in a stream.
// errors.Is(err, ErrProtocol) holds for it.
type ProtocolError struct {
	// Offset is the stream offset, in bytes from the first byte fed, of the
	// first byte of the offending frame.
	Offset int64
	// Opcode is the offending frame's opcode (RFC 6455 §5.2).
	Opcode byte
	// Reason names the rule that was broken.
	Reason string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%v: %s (opcode %#x, frame at byte %d)", ErrProtocol, e.Reason, e.Opcode, e.Offset)
}

// Unwrap returns [ErrProtocol].
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// Frame opcodes, RFC 6455 §5.2 and §11.8.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// CloseNoStatus is the close code reported for a close frame without a
// payload: "If this Close control frame contains no status code, _The
// WebSocket Connection Close Code_ is considered to be 1005" (RFC 6455 §7.1.5).
const CloseNoStatus = 1005

// maxControlPayload is the largest control frame payload. RFC 6455 §5.5: "All
// control frames MUST have a payload length of 125 bytes or less".
const maxControlPayload = 125

// MaskPolicy says what a [Parser] expects of each frame's MASK bit.
type MaskPolicy uint8

const (
	// MaskAny accepts masked and unmasked frames. It is the zero value.
	MaskAny MaskPolicy = iota
	// MaskRequired is for client-to-server streams. RFC 6455 §5.1: "a client
	// MUST mask all frames that it sends to the server".
	MaskRequired
	// MaskForbidden is for server-to-client streams: "A server MUST NOT mask
	// any frames that it sends to the client" (RFC 6455 §5.1).
	MaskForbidden
)

// Stats is a snapshot of what a [Parser] has seen.
type Stats struct {
	// Bytes counts every byte fed, including bytes after a protocol error.
	Bytes int64
	// Frames counts complete frames (header and whole payload), control
	// frames included.
	Frames int64
	// Messages counts complete data messages: a text or binary frame, plus
	// any continuation frames, ending with FIN set (RFC 6455 §5.4). Control
	// frames are not messages.
	Messages int64
	// CloseCode is the status code of the first close frame (RFC 6455
	// §5.5.1), [CloseNoStatus] (1005) when that frame has no payload, and 0
	// when no close code has been seen.
	CloseCode int
	// CloseReasonLen is the length in bytes of the first close frame's
	// reason (its payload after the two-byte code).
	CloseReasonLen int
	// Err is the first protocol violation, a [*ProtocolError], or nil. The
	// parser stops at it: from then on only Bytes grows.
	Err error
}

// Parser is an incremental RFC 6455 frame-header parser. Feed it the bytes
// of one direction of a connection in any chunking: frames may span chunks
// and a chunk may hold many frames. The zero value is ready to use and
// accepts masked and unmasked frames. A Parser is not safe for concurrent use.
type Parser struct {
	// Mask is checked against every frame's MASK bit; the zero value
	// ([MaskAny]) does not check it.
	Mask MaskPolicy

	bytes, frames, messages int64
	closeCode               int
	closeReasonLen          int
	closeSeen               bool // a close frame header has been parsed
	fragmented              bool // inside a message whose last frame had FIN clear
	failed                  bool
	perr                    ProtocolError

	// The frame being parsed.
	hdr        [14]byte // longest header: 2 + 8 (length) + 4 (masking key)
	hn, need   int      // header bytes held, header length (0 = no frame started)
	inPayload  bool
	rem        uint64 // payload bytes still to pass
	frameStart int64
	fin        bool
	opcode     byte
	key        [4]byte // masking key, zero when the frame is unmasked
	capture    bool    // collecting the two close-code bytes of this frame
	code       [2]byte
	coden      int
}

// Feed parses the next chunk of the stream. It never allocates. It returns a
// [*ProtocolError] from the call that finds the first violation; after that
// it only counts bytes and returns nil.
func (p *Parser) Feed(b []byte) error {
	p.bytes += int64(len(b))
	if p.failed {
		return nil
	}
	for len(b) > 0 {
		if p.inPayload {
			chunk := b
			if p.rem < uint64(len(b)) {
				chunk = b[:p.rem]
			}
			if p.capture {
				p.captureCode(chunk)
			}
			p.rem -= uint64(len(chunk))
			b = b[len(chunk):]
			if p.rem == 0 {
				p.endFrame()
			}
			continue
		}
		if p.need == 0 {
			p.frameStart = p.bytes - int64(len(b))
			p.need = 2
		}
		n := copy(p.hdr[p.hn:p.need], b)
		p.hn += n
		b = b[n:]
		if p.hn < p.need {
			continue // b is empty: the header continues in the next chunk
		}
		if p.hn == 2 {
			if err := p.parseFirstTwo(); err != nil {
				return err
			}
			if p.hn < p.need {
				continue
			}
		}
		if err := p.beginPayload(); err != nil {
			return err
		}
	}
	return nil
}

// Stats returns what the parser has seen so far.
func (p *Parser) Stats() Stats {
	s := Stats{
		Bytes:          p.bytes,
		Frames:         p.frames,
		Messages:       p.messages,
		CloseCode:      p.closeCode,
		CloseReasonLen: p.closeReasonLen,
	}
	if p.failed {
		s.Err = &p.perr
	}
	return s
}

// parseFirstTwo checks the fixed two header bytes (RFC 6455 §5.2) and sets
// the full header length.
func (p *Parser) parseFirstTwo() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	p.fin = b0&0x80 != 0
	p.opcode = b0 & 0x0F
	// RSV1-3 "MUST be 0 unless an extension is negotiated" (§5.2). The meter
	// never sees the handshake, and permessage-deflate (RFC 7692) sets RSV1,
	// so the RSV bits are not checked.
	masked := b1&0x80 != 0
	len7 := int(b1 & 0x7F)
	control := p.opcode&0x8 != 0
	switch {
	case p.opcode > opBinary && p.opcode < opClose, p.opcode > opPong:
		// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; "If an unknown
		// opcode is received, the receiving endpoint MUST _Fail the
		// WebSocket Connection_."
		return p.fail("reserved opcode")
	case control && !p.fin:
		// §5.5: control frames "MUST NOT be fragmented".
		return p.fail("fragmented control frame")
	case control && len7 > maxControlPayload:
		// §5.5: control frames "MUST have a payload length of 125 bytes or less".
		return p.fail("control frame payload longer than 125 bytes")
	case control && p.opcode == opClose && len7 == 1:
		// §5.5.1: "If there is a body, the first two bytes of the body MUST
		// be a 2-byte unsigned integer" (the status code).
		return p.fail("close frame payload of 1 byte")
	case p.opcode == opContinuation && !p.fragmented:
		// §5.4: a fragmented message starts with a non-zero opcode; a
		// continuation frame can only follow one.
		return p.fail("continuation frame outside a fragmented message")
	case !control && p.opcode != opContinuation && p.fragmented:
		// §5.4: "the fragments of one message MUST NOT be interleaved between
		// the fragments of another message unless an extension has been
		// negotiated that can interpret the interleaving."
		return p.fail("data frame inside a fragmented message")
	case p.Mask == MaskRequired && !masked:
		// §5.1: "a client MUST mask all frames that it sends to the server".
		return p.fail("unmasked frame where masking is required")
	case p.Mask == MaskForbidden && masked:
		// §5.1: "A server MUST NOT mask any frames that it sends to the client."
		return p.fail("masked frame where masking is forbidden")
	}
	p.need = 2
	switch len7 {
	case 126:
		p.need += 2
	case 127:
		p.need += 8
	}
	if masked {
		p.need += 4
	}
	return nil
}

// beginPayload decodes the payload length and masking key of a complete
// header and starts the payload.
func (p *Parser) beginPayload() error {
	len7 := p.hdr[1] & 0x7F
	var n uint64
	switch len7 {
	case 126:
		n = uint64(binary.BigEndian.Uint16(p.hdr[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(p.hdr[2:10])
		// §5.2: in the 64-bit length "the most significant bit MUST be 0".
		if n>>63 != 0 {
			return p.fail("64-bit payload length with the most significant bit set")
		}
	default:
		n = uint64(len7)
	}
	// §5.2 also asks for the minimal length encoding; a longer one is
	// tolerated because it does not change what is counted.
	p.key = [4]byte{}
	if p.hdr[1]&0x80 != 0 {
		copy(p.key[:], p.hdr[p.need-4:p.need])
	}
	switch p.opcode {
	case opText, opBinary, opContinuation:
		p.fragmented = !p.fin
	case opClose:
		if !p.closeSeen {
			p.closeSeen = true
			if len7 == 0 {
				p.closeCode, _ = ParseCloseCode(nil)
			} else {
				p.capture, p.coden = true, 0
				p.closeReasonLen = int(len7) - 2
			}
		}
	}
	p.hn = 0
	p.rem = n
	if n == 0 {
		p.endFrame()
		return nil
	}
	p.inPayload = true
	return nil
}

// captureCode collects the two status-code bytes at the start of a close
// frame payload, unmasking them with key bytes 0 and 1 (§5.3: octet i is
// XORed with masking-key octet i MOD 4).
func (p *Parser) captureCode(b []byte) {
	for _, c := range b {
		p.code[p.coden] = c ^ p.key[p.coden]
		p.coden++
		if p.coden == len(p.code) {
			p.closeCode, _ = ParseCloseCode(p.code[:])
			p.capture = false
			return
		}
	}
}

// endFrame counts a complete frame and readies the parser for the next one.
func (p *Parser) endFrame() {
	p.frames++
	if p.fin && p.opcode <= opBinary {
		p.messages++
	}
	p.inPayload = false
	p.capture = false
	p.need = 0
}

// fail records the first violation; p.perr never changes after this, so
// Stats can hand out a pointer to it.
func (p *Parser) fail(reason string) error {
	p.failed = true
	p.perr = ProtocolError{Offset: p.frameStart, Opcode: p.opcode, Reason: reason}
	return &p.perr
}

// ParseCloseCode returns the status code of an unmasked close frame payload
// (RFC 6455 §5.5.1: "the first two bytes of the body MUST be a 2-byte
// unsigned integer (in network byte order)"). An empty payload gives
// [CloseNoStatus] (§7.1.5); a 1-byte payload is malformed and gives ok false.
// The code's value is not checked against the ranges of §7.4: tracecar
// reports what the peer sent.
func ParseCloseCode(payload []byte) (code int, ok bool) {
	switch len(payload) {
	case 0:
		return CloseNoStatus, true
	case 1:
		return 0, false
	}
	return int(binary.BigEndian.Uint16(payload)), true
}
