package propagation

import (
	"context"
	"crypto/rand"
	"net/textproto"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// AttrCorrelationID is the span attribute holding the request's correlation
// ID. The OTel semantic conventions (checked up to v1.43.0) have no attribute
// for a protocol-neutral correlation or request ID: messaging.message.
// conversation_id is limited to messaging, http.request.header.<name> records
// a raw header (absent when tracecar mints the ID), and aws.request_id /
// azure.service.request.id are vendor IDs. Hence a tracecar namespace.
const AttrCorrelationID = attribute.Key("tracecar.correlation_id")

// Correlation defaults.
const (
	// HeaderRequestID is honoured when the configured header is absent.
	HeaderRequestID = "X-Request-Id"
	// DefaultCorrelationHeader is used when Correlation.Header is empty.
	DefaultCorrelationHeader = "X-Correlation-Id"
	// DefaultCorrelationMaxLen is used when Correlation.MaxLen is zero or
	// negative.
	DefaultCorrelationMaxLen = 128
)

// Correlation reads a caller's correlation ID from a carrier. The zero value
// reads DefaultCorrelationHeader with DefaultCorrelationMaxLen; build one with
// NewCorrelation to canonicalise a configured header name once.
type Correlation struct {
	// Header names the field carrying the correlation ID, in canonical MIME
	// form ("X-Correlation-Id"). Empty means DefaultCorrelationHeader.
	Header string
	// MaxLen is the longest accepted ID in bytes. Zero or negative means
	// DefaultCorrelationMaxLen. Below 32 it would reject the IDs
	// MintCorrelationID makes.
	MaxLen int

	lower string // strings.ToLower(Header), set by NewCorrelation
}

// NewCorrelation returns a Correlation for header (canonicalised; empty means
// DefaultCorrelationHeader) and maxLen (zero or negative means
// DefaultCorrelationMaxLen).
func NewCorrelation(header string, maxLen int) Correlation {
	if header == "" {
		header = DefaultCorrelationHeader
	}
	if maxLen <= 0 {
		maxLen = DefaultCorrelationMaxLen
	}
	header = textproto.CanonicalMIMEHeaderKey(header)
	return Correlation{Header: header, MaxLen: maxLen, lower: strings.ToLower(header)}
}

// HeaderName returns the field the correlation ID is read from and should be
// written to, with the default applied.
func (c Correlation) HeaderName() string {
	if c.Header == "" {
		return DefaultCorrelationHeader
	}
	return c.Header
}

// CorrelationResult says what Correlation.Lookup found.
type CorrelationResult int

// Lookup results. Every result but CorrelationValid means a new ID must be
// minted; the invalid ones are worth counting.
const (
	CorrelationAbsent   CorrelationResult = iota // neither header present
	CorrelationValid                             // one value that passes ValidCorrelationID
	CorrelationInvalid                           // fails ValidCorrelationID (bad character or too long)
	CorrelationRepeated                          // the header appears more than once
)

// String returns a short lower-case name, usable as a metric label.
func (r CorrelationResult) String() string {
	switch r {
	case CorrelationAbsent:
		return "absent"
	case CorrelationValid:
		return "valid"
	case CorrelationInvalid:
		return "invalid"
	case CorrelationRepeated:
		return "repeated"
	}
	return "unknown"
}

// Extract returns the caller's correlation ID and true if c.Header (else
// X-Request-Id) holds exactly one valid ID. It returns "", false when the ID
// is absent, invalid, oversized or repeated, so that it is replaced rather
// than passed on.
func (c Correlation) Extract(carrier otelprop.TextMapCarrier) (id string, ok bool) {
	id, r := c.Lookup(carrier)
	return id, r == CorrelationValid
}

// Lookup is Extract with the reason. The configured header wins whenever it
// is present, even if invalid: X-Request-Id is consulted only when it is
// absent, so a rejected ID is never swapped for a different one silently.
// The returned id is empty unless the result is CorrelationValid.
func (c Correlation) Lookup(carrier otelprop.TextMapCarrier) (string, CorrelationResult) {
	name, lower := c.HeaderName(), c.lower
	if !strings.EqualFold(lower, name) {
		lower = "" // zero value, a literal, or Header changed after NewCorrelation
	}
	var one [1]string
	vals := correlationValues(carrier, name, lower, &one)
	if len(vals) == 0 && !strings.EqualFold(name, HeaderRequestID) {
		vals = correlationValues(carrier, HeaderRequestID, "x-request-id", &one)
	}
	switch {
	case len(vals) == 0:
		return "", CorrelationAbsent
	case len(vals) > 1:
		return "", CorrelationRepeated
	}
	// RFC 9110 §5.5: a field value excludes leading and trailing whitespace.
	id := trimOWS(vals[0])
	if !ValidCorrelationID(id, c.MaxLen) {
		return "", CorrelationInvalid
	}
	return id, CorrelationValid
}

func correlationValues(c otelprop.TextMapCarrier, name, lower string, scratch *[1]string) []string {
	if h, ok := c.(otelprop.HeaderCarrier); ok {
		// Values canonicalises name; an already canonical name costs nothing.
		return textproto.MIMEHeader(h).Values(name)
	}
	if lower == "" {
		lower = strings.ToLower(name)
	}
	return fieldValues(c, "", lower, scratch)
}

// correlationChars marks the bytes allowed after the first one of a
// correlation ID: RFC 3986 unreserved (ALPHA DIGIT "-" "." "_" "~"), the
// base64 symbols "+" "/" "=", and ":" "@" for compound IDs.
var correlationChars = func() (t [256]bool) {
	for _, c := range []byte("-._~+/=:@") {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
		t[c+'a'-'A'] = true
	}
	return t
}()

// ValidCorrelationID reports whether s is acceptable as a correlation ID:
// 1 to maxLen bytes (zero or negative maxLen means DefaultCorrelationMaxLen),
// the first an ASCII letter or digit, the rest letters, digits or one of
// - . _ ~ + / = : @
//
// That admits UUIDs, ULIDs, hex and base64/base64url IDs and
// "tenant:id"-style compounds, and keeps out everything that could break a
// header, a log line or a CSV export: whitespace and control characters
// (header injection), quotes and backslashes (JSON/log escaping), ',' and ';'
// (list and CSV separators), '%' (percent-decoding) and a leading = + - @
// (spreadsheet formula injection).
func ValidCorrelationID(s string, maxLen int) bool {
	if maxLen <= 0 {
		maxLen = DefaultCorrelationMaxLen
	}
	if s == "" || len(s) > maxLen {
		return false
	}
	if !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !correlationChars[s[i]] {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// MintCorrelationID returns a new correlation ID: the 32 lowercase hex digits
// of tid when it is valid (one allocation; the ID then matches the trace), else
// 128 random bits from crypto/rand in the same form.
func MintCorrelationID(tid trace.TraceID) string {
	if !tid.IsValid() {
		// crypto/rand.Read never returns an error and always fills the buffer
		// (Go 1.24 and later).
		_, _ = rand.Read(tid[:])
	}
	var buf [32]byte
	return string(appendHex(buf[:0], tid[:]))
}

type correlationKey struct{}

// ContextWithCorrelationID returns a copy of ctx carrying id.
func ContextWithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFromContext returns the ID stored by ContextWithCorrelationID,
// or "" if there is none.
func CorrelationIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
