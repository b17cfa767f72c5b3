package dedupe

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// Scope is everything a record belongs to. The draft's security section
// asks for "a unique composite key as the idempotent cache lookup key",
// combining the client's key "with other client specific attributes known
// only to the resource"; here those are the principal, method and route.
type Scope struct {
	// Principal identifies the client. It is already a hash of the
	// configured credential headers, never a raw credential, and never an IP.
	Principal string
	// Method is the request method (or the message operation).
	Method string
	// Route is the route pattern or path the request matched.
	Route string
	// Key is the parsed Idempotency-Key.
	Key string
}

// ID is the store key for s: hex SHA-256 of the length-prefixed fields, so
// no choice of field values can make two different scopes encode alike.
// Stores still keep the full Scope and compare it on every read.
func (s Scope) ID() string {
	const domain = "tracecar.idempotency.scope.v1"
	var stack [512]byte // typical scopes hash without a heap buffer
	buf := stack[:0]
	buf = appendField(buf, domain)
	buf = appendField(buf, s.Principal)
	buf = appendField(buf, s.Method)
	buf = appendField(buf, s.Route)
	buf = appendField(buf, s.Key)
	sum := sha256.Sum256(buf)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// KeyHash is the first 12 hex characters of SHA-256(Key): the only form of
// a key that may appear in logs, spans or error messages.
func (s Scope) KeyHash() string {
	sum := sha256.Sum256([]byte(s.Key))
	return hex.EncodeToString(sum[:6])
}

// appendField appends a 64-bit big-endian length and then the bytes.
func appendField(buf []byte, v string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(v)))
	return append(buf, v...)
}

// Fingerprint identifies the content of a request: same key with a different
// fingerprint is a reuse of the key for another request.
type Fingerprint [32]byte

// String returns the fingerprint in hex.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Hasher computes a Fingerprint. Fields (method, path and query, configured
// headers, in a fixed order chosen by the caller) are length-prefixed so
// bytes cannot move from one field to the next without changing the sum;
// the body is hashed separately and folded in with its length, so how it was
// split into Write calls does not matter. The zero value is not usable; call
// NewHasher.
type Hasher struct {
	scratch []byte
	sumBuf  [2*sha256.Size + 8]byte
	fields  hash.Hash
	body    hash.Hash
	bodyLen uint64
}

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher {
	h := &Hasher{fields: sha256.New(), body: sha256.New()}
	h.Reset()
	return h
}

// Field adds one named field. Callers normalise names (e.g. canonical header
// names) before calling; the Hasher compares bytes.
func (h *Hasher) Field(name, value string) {
	h.scratch = appendField(appendField(h.scratch[:0], name), value)
	_, _ = h.fields.Write(h.scratch) // hash.Hash.Write never returns an error
}

// Write adds body bytes. It never returns an error.
func (h *Hasher) Write(body []byte) (int, error) {
	h.bodyLen += uint64(len(body))
	return h.body.Write(body)
}

// Sum returns the fingerprint of everything added so far. It does not change
// the Hasher's state.
func (h *Hasher) Sum() Fingerprint {
	// hash.Hash.Sum appends without changing the state, so h stays usable.
	out := h.fields.Sum(h.sumBuf[:0])
	out = binary.BigEndian.AppendUint64(out, h.bodyLen)
	out = h.body.Sum(out)
	return sha256.Sum256(out)
}

// Reset empties the Hasher so it can be reused.
func (h *Hasher) Reset() {
	h.fields.Reset()
	h.body.Reset()
	h.bodyLen = 0
	h.scratch = appendField(h.scratch[:0], "tracecar.idempotency.fingerprint.v1")
	_, _ = h.fields.Write(h.scratch) // hash.Hash.Write never returns an error
}
