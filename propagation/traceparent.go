package propagation

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Field names, in the lower case W3C Trace Context says to send
// (§3.2.1 and §3.3.1: vendors SHOULD send the header name in lowercase).
const (
	FieldTraceparent   = "traceparent"
	FieldTracestate    = "tracestate"
	FieldTraceresponse = "traceresponse" // Trace Context Level 2, response header
)

// Canonical MIME forms, so that http.Header lookups do not allocate.
const (
	canonTraceparent = "Traceparent"
	canonTracestate  = "Tracestate"
)

// Errors returned by [ParseTraceparent]. Every error wraps
// ErrInvalidTraceparent; a duplicated field also wraps ErrDuplicateTraceparent.
var (
	ErrInvalidTraceparent   = errors.New("invalid traceparent")
	ErrDuplicateTraceparent = errors.New("duplicate traceparent")
)

// traceparentLen is the length of a version 00 traceparent:
// 2 (version) + 1 + 32 (trace-id) + 1 + 16 (parent-id) + 1 + 2 (trace-flags).
const traceparentLen = 55

// Offsets of the fields inside a traceparent value.
const (
	offTraceID  = 3
	offParentID = 36
	offFlags    = 53
)

// reason says why a traceparent was rejected. It is a constant so that the
// hot path (TraceContext.Extract) reports failure without allocating.
type reason string

const (
	rsnComma        reason = "value contains a comma: several traceparent fields were combined"
	rsnVersion      reason = "version is not 2 lowercase hex digits followed by '-'"
	rsnVersionFF    reason = "version ff is forbidden"
	rsnTooShort     reason = "shorter than 55 characters"
	rsnV00Length    reason = "version 00 must be exactly 55 characters"
	rsnFutureSuffix reason = "future version: character after the trace-flags is not '-'"
	rsnDelimiter    reason = "fields are not separated by '-' at offsets 35 and 52"
	rsnTraceIDHex   reason = "trace-id is not 32 lowercase hex digits"
	rsnTraceIDZero  reason = "trace-id is all zeros"
	rsnParentIDHex  reason = "parent-id is not 16 lowercase hex digits"
	rsnParentIDZero reason = "parent-id is all zeros"
	rsnFlagsHex     reason = "trace-flags is not 2 lowercase hex digits"
)

// ParseTraceparent parses one traceparent field value per W3C Trace Context
// Level 1 §3.2. On success the SpanContext is marked remote and carries only
// the sampled flag. Errors wrap [ErrInvalidTraceparent] and name the rule that
// failed.
func ParseTraceparent(v string) (trace.SpanContext, error) {
	sc, r := parseTraceparent(v)
	if r == rsnComma {
		return trace.SpanContext{}, fmt.Errorf("%w: %w: %s", ErrInvalidTraceparent, ErrDuplicateTraceparent, r)
	}
	if r != "" {
		return trace.SpanContext{}, fmt.Errorf("%w: %s", ErrInvalidTraceparent, r)
	}
	return sc, nil
}

func parseTraceparent(v string) (trace.SpanContext, reason) {
	// RFC 7230 §3.2.4: a field value excludes leading and trailing OWS; the
	// W3C conformance suite (test_traceparent_ows_handling) sends both.
	v = trimOWS(v)
	// RFC 7230 §3.2.2: a recipient MAY combine repeated fields with ",".
	// traceparent is not a list, so a comma means it was sent more than once,
	// and a duplicated traceparent starts a new trace
	// (conformance test test_traceparent_duplicated).
	if strings.IndexByte(v, ',') >= 0 {
		return trace.SpanContext{}, rsnComma
	}
	// §3.2.4: "When the version prefix cannot be parsed (it's not 2 hex
	// characters followed by a dash (-)), the implementation should restart
	// the trace." §3.2.2.1: version = 2HEXDIGLC.
	if len(v) < 3 || v[2] != '-' {
		return trace.SpanContext{}, rsnVersion
	}
	version, ok := hexByte(v[0], v[1])
	if !ok {
		return trace.SpanContext{}, rsnVersion
	}
	// §3.2.2.1: "Version ff is invalid."
	if version == 0xff {
		return trace.SpanContext{}, rsnVersionFF
	}
	// §3.2.4: "If the size of the header is shorter than 55 characters, the
	// vendor should not parse the header and should restart the trace."
	if len(v) < traceparentLen {
		return trace.SpanContext{}, rsnTooShort
	}
	// §3.2.4: the 32 trace-id characters and the 16 parent-id characters
	// MUST be "followed by a dash".
	if v[offParentID-1] != '-' || v[offFlags-1] != '-' {
		return trace.SpanContext{}, rsnDelimiter
	}
	if version == 0 {
		// §3.2.2.2: version 00 is exactly version-format, nothing may follow
		// (conformance test test_traceparent_version_0x00).
		if len(v) != traceparentLen {
			return trace.SpanContext{}, rsnV00Length
		}
	} else if len(v) > traceparentLen && v[traceparentLen] != '-' {
		// §3.2.4: "Vendors MUST check that the 2 characters are either the
		// end of the string or a dash." Whatever follows the dash is an
		// unknown field: "Vendors MUST NOT parse or assume anything about
		// unknown fields for this version."
		return trace.SpanContext{}, rsnFutureSuffix
	}

	var cfg trace.SpanContextConfig
	// §3.2.2.3: "If the trace-id value is invalid (for example if it contains
	// non-allowed characters or all zeros), vendors MUST ignore the
	// traceparent." HEXDIGLC excludes upper case.
	if !decodeHexLower(cfg.TraceID[:], v[offTraceID:offParentID-1]) {
		return trace.SpanContext{}, rsnTraceIDHex
	}
	if !cfg.TraceID.IsValid() {
		return trace.SpanContext{}, rsnTraceIDZero
	}
	// §3.2.2.4: "Vendors MUST ignore the traceparent when the parent-id is
	// invalid (for example, if it contains non-lowercase hex characters)."
	// All zeros is invalid too.
	if !decodeHexLower(cfg.SpanID[:], v[offParentID:offFlags-1]) {
		return trace.SpanContext{}, rsnParentIDHex
	}
	if !cfg.SpanID.IsValid() {
		return trace.SpanContext{}, rsnParentIDZero
	}
	flags, ok := hexByte(v[offFlags], v[offFlags+1])
	if !ok {
		// §4.3 step 2.3: invalid trace-flags (not 2HEXDIGLC) restart the trace.
		return trace.SpanContext{}, rsnFlagsHex
	}
	// §3.2.2.5.1: version 00 "only supports a single flag called sampled";
	// §3.2.2.5.2: other flags are "reserved for future use", and §4.3 step
	// 2.2: the vendor will "ignore all other values". Unknown bits are
	// therefore dropped, not treated as invalid.
	cfg.TraceFlags = trace.TraceFlags(flags) & trace.FlagsSampled
	cfg.Remote = true
	return trace.NewSpanContext(cfg), ""
}

// AppendTraceparent appends the version 00 traceparent value for sc to dst:
// "00-<trace-id>-<parent-id>-<trace-flags>". Only the sampled flag is
// written: Level 1 §3.2.2.5.2 says other flags MUST be set to zero. If sc is
// not valid, dst is returned unchanged. It does not allocate when dst has 55
// bytes of spare capacity.
func AppendTraceparent(dst []byte, sc trace.SpanContext) []byte {
	return appendVersion00(dst, sc, trace.FlagsSampled)
}

// AppendTraceresponse appends the W3C Trace Context Level 2 traceresponse
// value for sc to dst. The format is the one of traceparent version 00, with
// sc's span as the child-id. Level 2 defines the sampled and random-trace-id
// flags for traceresponse and says other flags MUST be set to zero; only those
// two are written. If sc is not valid, dst is returned unchanged.
func AppendTraceresponse(dst []byte, sc trace.SpanContext) []byte {
	return appendVersion00(dst, sc, trace.FlagsSampled|trace.FlagsRandom)
}

func appendVersion00(dst []byte, sc trace.SpanContext, mask trace.TraceFlags) []byte {
	if !sc.IsValid() {
		return dst
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, '0', '0', '-')
	dst = appendHex(dst, tid[:])
	dst = append(dst, '-')
	dst = appendHex(dst, sid[:])
	dst = append(dst, '-')
	f := byte(sc.TraceFlags() & mask)
	return append(dst, hexDigits[f>>4], hexDigits[f&0x0f])
}

// trimOWS removes RFC 7230 optional whitespace (SP and HTAB) from both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
