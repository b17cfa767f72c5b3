package wsmeter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// testKey is the masking key of the examples in RFC 6455 §5.7.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// frame builds one RFC 6455 frame with the minimal length encoding; mask
// selects whether the payload is masked with testKey.
func frame(fin bool, op byte, mask bool, payload []byte) []byte {
	var h []byte
	b0 := op
	if fin {
		b0 |= 0x80
	}
	h = append(h, b0)
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		h = append(h, m|byte(n))
	case n <= 0xFFFF:
		h = append(h, m|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, m|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if !mask {
		return append(h, payload...)
	}
	h = append(h, testKey[:]...)
	for i, c := range payload {
		h = append(h, c^testKey[i%4])
	}
	return h
}

// closePayload is a close frame body: a 2-byte code and a reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// sameStats compares two snapshots, errors by value.
func sameStats(a, b Stats) error {
	ea, eb := a.Err, b.Err
	a.Err, b.Err = nil, nil
	if a != b {
		return fmt.Errorf("stats differ: %+v vs %+v", a, b)
	}
	if ea == nil && eb == nil {
		return nil
	}
	var pa, pb *ProtocolError
	if !errors.As(ea, &pa) || !errors.As(eb, &pb) || *pa != *pb {
		return fmt.Errorf("errors differ: %v vs %v", ea, eb)
	}
	return nil
}

// refParse is an independent whole-buffer reading of the rules Parser
// applies incrementally; the fuzz target checks one against the other.
func refParse(data []byte, mask MaskPolicy) Stats {
	s := Stats{Bytes: int64(len(data))}
	fragmented, closeSeen := false, false
	fail := func(off int, op byte, reason string) Stats {
		s.Err = &ProtocolError{Offset: int64(off), Opcode: op, Reason: reason}
		return s
	}
	for off := 0; len(data)-off >= 2; {
		b0, b1 := data[off], data[off+1]
		fin, op, masked, l7 := b0&0x80 != 0, b0&0xF, b1&0x80 != 0, int(b1&0x7F)
		ctl := op >= 8
		switch {
		case (op >= 3 && op <= 7) || op >= 0xB:
			return fail(off, op, "reserved opcode")
		case ctl && !fin:
			return fail(off, op, "fragmented control frame")
		case ctl && l7 > 125:
			return fail(off, op, "control frame payload longer than 125 bytes")
		case op == 8 && l7 == 1:
			return fail(off, op, "close frame payload of 1 byte")
		case op == 0 && !fragmented:
			return fail(off, op, "continuation frame outside a fragmented message")
		case (op == 1 || op == 2) && fragmented:
			return fail(off, op, "data frame inside a fragmented message")
		case mask == MaskRequired && !masked:
			return fail(off, op, "unmasked frame where masking is required")
		case mask == MaskForbidden && masked:
			return fail(off, op, "masked frame where masking is forbidden")
		}
		hl := 2
		plen := uint64(l7)
		switch l7 {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if masked {
			hl += 4
		}
		if len(data)-off < hl {
			return s
		}
		switch l7 {
		case 126:
			plen = uint64(binary.BigEndian.Uint16(data[off+2:]))
		case 127:
			plen = binary.BigEndian.Uint64(data[off+2:])
			if plen>>63 != 0 {
				return fail(off, op, "64-bit payload length with the most significant bit set")
			}
		}
		var key [4]byte
		if masked {
			copy(key[:], data[off+hl-4:])
		}
		if !ctl {
			fragmented = !fin
		}
		body := data[off+hl:]
		if op == 8 && !closeSeen {
			closeSeen = true
			if plen == 0 {
				s.CloseCode = 1005
			} else {
				s.CloseReasonLen = int(plen) - 2
				if len(body) >= 2 {
					s.CloseCode = int(body[0]^key[0])<<8 | int(body[1]^key[1])
				}
			}
		}
		if uint64(len(body)) < plen {
			return s
		}
		off += hl + int(plen)
		s.Frames++
		if !ctl && fin {
			s.Messages++
		}
	}
	return s
}
