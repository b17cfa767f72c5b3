package dedupe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// State is where a scope is in its life.
type State uint8

const (
	// StateInProgress means claimed: the one executor is running it.
	StateInProgress State = iota
	// StateCompleted means finished: Response holds what to replay.
	StateCompleted
	// StateNotReplayable means finished, but the response was not kept (too large,
	// streaming). A retry gets an error, never a second execution.
	StateNotReplayable
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateInProgress:
		return "in_progress"
	case StateCompleted:
		return "completed"
	case StateNotReplayable:
		return "not_replayable"
	default:
		return fmt.Sprintf("State(%d)", uint8(s))
	}
}

// Response is a stored response, replayed byte for byte.
type Response struct {
	Status int
	Header map[string][]string
	Body   []byte
	// Trailer holds the fields sent after the body (a gRPC call's
	// grpc-status, grpc-message and trailing metadata). Nil: none.
	Trailer map[string][]string
}

// Record is what a store holds for one scope. Records returned by a Store
// are shared and must be treated as read-only.
type Record struct {
	Scope       Scope
	Fingerprint Fingerprint
	State       State
	// Owner is the claim's owner token. Stores blank it in records returned
	// to callers that do not own the claim.
	Owner string
	// Expiry is always checked from these timestamps when a record is read,
	// never from store TTLs alone (those only collect garbage).
	CreatedAt, LeaseUntil, ExpiresAt time.Time
	// Response is set for StateCompleted.
	Response *Response
	// Reason says why a StateNotReplayable response was not kept.
	Reason string
	// Status is the status the app answered, for StateNotReplayable.
	Status int
}

// ErrRecordInvalid is returned by UnmarshalBinary for bytes that are not a
// record written by MarshalBinary.
var ErrRecordInvalid = errors.New("dedupe: invalid stored record")

// Encoding: magic, version, state, owner (these four first and in this order:
// the Redis scripts check ownership by comparing this prefix), then the
// fingerprint, the scope, three timestamps, status, reason, response
// (status, headers, body and, from version 2 on, trailers).
//
// A record is written as version 2 only when its response has trailers;
// every other record (in-progress claims included) is still version 1, so
// replicas of a tracecar that predates trailers keep reading the records of
// plain HTTP responses from a shared Redis during a rolling upgrade.
const (
	recordMagic      = 't'
	recordVersion    = 1 // no trailers
	recordVersionTrl = 2 // the response's trailers follow its body
	maxStatus        = 999
)

// ownerPrefix is the encoding's first bytes for a record in state st owned by
// owner. Records that are compared by it carry no response, so they are
// always version 1.
func ownerPrefix(st State, owner string) []byte {
	b := make([]byte, 0, 3+binary.MaxVarintLen64+len(owner))
	b = append(b, recordMagic, recordVersion, byte(st))
	return appendString(b, owner)
}

// version is the encoding version r is written in.
func (r *Record) version() byte {
	if r.Response != nil && len(r.Response.Trailer) > 0 {
		return recordVersionTrl
	}
	return recordVersion
}

// MarshalBinary encodes r compactly (for Redis).
func (r *Record) MarshalBinary() ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, r.encodedLen())
	b = append(b, recordMagic, r.version(), byte(r.State))
	b = appendString(b, r.Owner)
	b = append(b, r.Fingerprint[:]...)
	for _, f := range [...]string{r.Scope.Principal, r.Scope.Method, r.Scope.Route, r.Scope.Key} {
		b = appendString(b, f)
	}
	for _, t := range [...]time.Time{r.CreatedAt, r.LeaseUntil, r.ExpiresAt} {
		b = binary.AppendVarint(b, unixNano(t))
	}
	b = binary.AppendUvarint(b, nonNeg(r.Status))
	b = appendString(b, r.Reason)
	if r.Response == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, nonNeg(r.Response.Status))
	b = appendFields(b, r.Response.Header)
	b = binary.AppendUvarint(b, uint64(len(r.Response.Body)))
	b = append(b, r.Response.Body...)
	if r.version() == recordVersionTrl {
		b = appendFields(b, r.Response.Trailer)
	}
	return b, nil
}

// appendFields encodes a header or trailer map: the count, then each name
// (sorted) with its values.
func appendFields(b []byte, fields map[string][]string) []byte {
	names := sortedNames(fields)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		vals := fields[name]
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(len(vals)))
		for _, v := range vals {
			b = appendString(b, v)
		}
	}
	return b
}

func fieldsLen(fields map[string][]string) int {
	n := uvarintLen(uint64(len(fields)))
	for name, vals := range fields {
		n += strLen(name) + uvarintLen(uint64(len(vals)))
		for _, v := range vals {
			n += strLen(v)
		}
	}
	return n
}

// encodedLen is the exact length MarshalBinary produces; the memory store
// uses it as the record's cost.
func (r *Record) encodedLen() int {
	n := 3 + strLen(r.Owner) + len(r.Fingerprint)
	n += strLen(r.Scope.Principal) + strLen(r.Scope.Method) + strLen(r.Scope.Route) + strLen(r.Scope.Key)
	for _, t := range [...]time.Time{r.CreatedAt, r.LeaseUntil, r.ExpiresAt} {
		n += varintLen(unixNano(t))
	}
	n += uvarintLen(nonNeg(r.Status)) + strLen(r.Reason) + 1
	if r.Response == nil {
		return n
	}
	n += uvarintLen(nonNeg(r.Response.Status)) + fieldsLen(r.Response.Header)
	n += uvarintLen(uint64(len(r.Response.Body))) + len(r.Response.Body)
	if r.version() == recordVersionTrl {
		n += fieldsLen(r.Response.Trailer)
	}
	return n
}

func (r *Record) validate() error {
	switch {
	case r.State > StateNotReplayable:
		return fmt.Errorf("%w: unknown state %d", ErrRecordInvalid, r.State)
	case (r.State == StateCompleted) != (r.Response != nil):
		return fmt.Errorf("%w: a response is stored exactly when the state is completed (state %s)", ErrRecordInvalid, r.State)
	case r.Status < 0 || r.Status > maxStatus:
		return fmt.Errorf("%w: status %d out of range", ErrRecordInvalid, r.Status)
	case r.Response != nil && (r.Response.Status < 0 || r.Response.Status > maxStatus):
		return fmt.Errorf("%w: response status %d out of range", ErrRecordInvalid, r.Response.Status)
	}
	return nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It never allocates more
// than the input can describe, and rejects trailing or missing bytes.
func (r *Record) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if len(data) < 3 || data[0] != recordMagic || (data[1] != recordVersion && data[1] != recordVersionTrl) {
		return fmt.Errorf("%w: bad magic or version", ErrRecordInvalid)
	}
	out := Record{State: State(data[2])}
	d.b = data[3:]
	out.Owner = d.string()
	if d.err == nil && len(d.b) < len(out.Fingerprint) {
		d.fail("short fingerprint")
	}
	if d.err == nil {
		copy(out.Fingerprint[:], d.b)
		d.b = d.b[len(out.Fingerprint):]
	}
	out.Scope = Scope{Principal: d.string(), Method: d.string(), Route: d.string(), Key: d.string()}
	out.CreatedAt, out.LeaseUntil, out.ExpiresAt = d.time(), d.time(), d.time()
	out.Status = d.status()
	out.Reason = d.string()
	switch d.byte() {
	case 0:
	case 1:
		out.Response = d.response(data[1])
	default:
		d.fail("bad response marker")
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return d.err
	}
	if err := out.validate(); err != nil {
		return err
	}
	*r = out
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrRecordInvalid, what)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length or element count that must fit in the remaining bytes.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > math.MaxInt32 || int(v) > len(d.b) {
		d.fail("length beyond end of record")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad timestamp")
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (d *decoder) status() int {
	v := d.uvarint()
	if v > maxStatus {
		d.fail("status out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) response(version byte) *Response {
	resp := &Response{Status: d.status()}
	resp.Header = d.fields("header")
	if body := d.bytes(); len(body) > 0 {
		resp.Body = slices.Clone(body)
	}
	if version == recordVersionTrl {
		resp.Trailer = d.fields("trailer")
	}
	return resp
}

// fields decodes what appendFields wrote; nil when there are none.
func (d *decoder) fields(what string) map[string][]string {
	n := d.count()
	var out map[string][]string
	if n > 0 {
		out = make(map[string][]string, n)
	}
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		name := d.string()
		if i > 0 && name <= prev {
			d.fail(what + " names not sorted and unique")
		}
		prev = name
		vals := make([]string, d.count())
		for j := range vals {
			vals[j] = d.string()
		}
		out[name] = vals
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

// nonNeg converts a validated (non-negative) status for encoding.
func nonNeg(n int) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// unixNano encodes t; the zero time is 0 and times outside int64
// nanoseconds are clamped.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func sortedNames(h map[string][]string) []string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
