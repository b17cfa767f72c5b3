package propagation

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// ErrInvalidTracestate is wrapped by every error [ParseTracestate] returns.
var ErrInvalidTracestate = errors.New("invalid tracestate")

// Limits from W3C Trace Context Level 1 §3.3.1.
const (
	maxMembers   = 32  // §3.3.1.1 "a maximum of 32 list-members"
	maxKeyLen    = 256 // simple-key = lcalpha 0*255(...)
	maxTenantLen = 241 // tenant-id = (lcalpha / DIGIT) 0*240(...)
	maxSystemLen = 14  // system-id = lcalpha 0*13(...)
	maxValueLen  = 256 // value = 0*255(chr) nblk-chr
)

const (
	rsnNoEquals  reason = "list-member is not key=value"
	rsnKey       reason = "key does not match simple-key or tenant-id@system-id"
	rsnValue     reason = "value is empty, longer than 256, ends in a space, or has a character outside 0x20-0x7E or ',' '='"
	rsnTooMany   reason = "more than 32 list-members"
	rsnDuplicate reason = "duplicate key"
	rsnOTel      reason = "rejected by trace.ParseTraceState"
)

type listMember struct{ key, value string }

// ParseTracestate parses the tracestate field values of one message per W3C
// Trace Context Level 1 §3.3. Several values are combined as RFC 7230 §3.2.2
// says (joined with ","), empty and whitespace-only list-members are skipped,
// and the result holds the members in order without optional whitespace.
//
// Any violation (a key or value outside the grammar, a duplicate key, more than
// 32 list-members) makes the whole tracestate invalid: the error wraps
// [ErrInvalidTracestate] and names the 1-based list-member that failed
// (empty ones counted). A
// caller discards the tracestate then, as §4.3 step 3 allows and the W3C
// conformance suite (STRICT_LEVEL 2) expects; the traceparent stays valid.
func ParseTracestate(values []string) (trace.TraceState, error) {
	ts, r, member := parseTracestate(values)
	if r != "" {
		return trace.TraceState{}, fmt.Errorf("%w: list-member %d: %s", ErrInvalidTracestate, member, r)
	}
	return ts, nil
}

// parseTracestate returns the parsed TraceState, or the reason and 1-based
// index of the first list-member that broke a rule.
func parseTracestate(values []string) (trace.TraceState, reason, int) {
	var (
		members [maxMembers]listMember
		n       int
		size    int
		index   int
		// canonical stays true while the input is one field with no optional
		// whitespace and no empty members, so it can be used as it is.
		canonical = len(values) == 1
	)
	for _, field := range values {
		rest := field
		for more := true; more; {
			var m string
			m, rest, more = strings.Cut(rest, ",")
			index++
			// §3.3.1.1: "Spaces and horizontal tabs surrounding list-members
			// are ignored."
			t := trimOWS(m)
			if len(t) != len(m) {
				canonical = false
			}
			if t == "" {
				// §3.3.1.1: "Empty and whitespace-only list members are
				// allowed." They do not count towards the 32.
				if field != "" {
					canonical = false
				}
				continue
			}
			key, value, ok := strings.Cut(t, "=")
			if !ok {
				return trace.TraceState{}, rsnNoEquals, index
			}
			if !validKey(key) {
				return trace.TraceState{}, rsnKey, index
			}
			if !validValue(value) {
				return trace.TraceState{}, rsnValue, index
			}
			// §3.3.1.1: "There can be a maximum of 32 list-members in a
			// list." §3.3.1.5 allows truncation only "due to size
			// limitations"; §4.3 step 3 lets a vendor discard a tracestate
			// that cannot be parsed, which is what tracecar does with a 33rd
			// member (conformance test test_tracestate_member_count_limit).
			if n == maxMembers {
				return trace.TraceState{}, rsnTooMany, index
			}
			// §3.3.1.4: "Only one entry per key is allowed." A duplicate makes
			// the list unparsable and it is discarded
			// (conformance test test_tracestate_duplicated_keys).
			for i := range n {
				if members[i].key == key {
					return trace.TraceState{}, rsnDuplicate, index
				}
			}
			members[n] = listMember{key: key, value: value}
			size += len(t)
			n++
		}
	}
	if n == 0 {
		// §3.3.1.1: vendors MUST accept an empty tracestate; there is nothing
		// to keep, and §3.3.1.1 says empty ones SHOULD NOT be sent on.
		return trace.TraceState{}, "", 0
	}
	s := values[0]
	if !canonical {
		var b strings.Builder
		b.Grow(size + n - 1)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(members[i].key)
			b.WriteByte('=')
			b.WriteString(members[i].value)
		}
		s = b.String()
	}
	// trace.TraceState can only be built by its own parser. The input is
	// valid by the rules above, which are at least as strict as
	// trace.ParseTraceState, so this cannot fail unless the two drift apart.
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		return trace.TraceState{}, rsnOTel, 0
	}
	return ts, "", 0
}

// keyChar reports whether c may follow the first character of a simple-key,
// tenant-id or system-id: lcalpha / DIGIT / "_" / "-" / "*" / "/".
func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '*' || c == '/'
}

func lcAlpha(c byte) bool { return c >= 'a' && c <= 'z' }

func digit(c byte) bool { return c >= '0' && c <= '9' }

// validKey checks §3.3.1.3.1:
//
//	key = simple-key / multi-tenant-key
//	simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	multi-tenant-key = tenant-id "@" system-id
//	tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
func validKey(k string) bool {
	tenant, system, multi := strings.Cut(k, "@")
	if !multi {
		return len(k) <= maxKeyLen && k != "" && lcAlpha(k[0]) && keyTail(k[1:])
	}
	return tenant != "" && len(tenant) <= maxTenantLen &&
		(lcAlpha(tenant[0]) || digit(tenant[0])) && keyTail(tenant[1:]) &&
		system != "" && len(system) <= maxSystemLen &&
		lcAlpha(system[0]) && keyTail(system[1:])
}

func keyTail(s string) bool {
	for i := range len(s) {
		if !keyChar(s[i]) {
			return false
		}
	}
	return true
}

// validValue checks §3.3.1.3.2:
//
//	value    = 0*255(chr) nblk-chr
//	nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
//	chr      = %x20 / nblk-chr
func validValue(v string) bool {
	if v == "" || len(v) > maxValueLen || v[len(v)-1] == ' ' {
		return false
	}
	for i := range len(v) {
		if c := v[i]; c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}
