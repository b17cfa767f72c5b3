package propagation

const hexDigits = "0123456789abcdef"

// hexRev maps a lowercase hex digit (W3C HEXDIGLC) to its value and every
// other byte, upper case A-F included, to 0xff. No valid value has a high
// nibble, so OR-ing looked-up values detects any invalid byte at once.
var hexRev = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(hexDigits) {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

// hexByte decodes two lowercase hex digits.
func hexByte(hi, lo byte) (byte, bool) {
	h, l := hexRev[hi], hexRev[lo]
	return h<<4 | l, (h|l)&0xf0 == 0
}

// decodeHexLower decodes len(dst)*2 lowercase hex digits from src into dst.
// The caller guarantees len(src) == 2*len(dst).
func decodeHexLower(dst []byte, src string) bool {
	var bad byte
	for i := range dst {
		h, l := hexRev[src[2*i]], hexRev[src[2*i+1]]
		dst[i] = h<<4 | l
		bad |= h | l
	}
	return bad&0xf0 == 0
}

// appendHex appends the lowercase hex encoding of src to dst.
func appendHex(dst, src []byte) []byte {
	for _, b := range src {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return dst
}
