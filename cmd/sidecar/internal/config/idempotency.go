package config

import (
	"fmt"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Modes of an [IdempotencyRoute].
const (
	// IdempotencyOff passes requests through; Idempotency-Key is ignored.
	IdempotencyOff = "off"
	// IdempotencyOptional enforces Idempotency-Key on the requests that
	// carry one; the others pass through.
	IdempotencyOptional = "optional"
	// IdempotencyRequired answers 400 to a request without Idempotency-Key.
	IdempotencyRequired = "required"
)

// Stores accepted by TRACECAR_IDEMPOTENCY_STORE.
const (
	IdempotencyStoreMemory = "memory"
	IdempotencyStoreRedis  = "redis"
)

// idempotencyLeaseMargin is added to the upstream response header timeout
// to give the default lease: the execution's time plus time to record it.
const idempotencyLeaseMargin = 10 * time.Second

// maxIdempotencyRoutes bounds the rules of TRACECAR_IDEMPOTENCY_ROUTES,
// which every request is matched against in turn.
const maxIdempotencyRoutes = 256

// IdempotencyRoute is one rule of TRACECAR_IDEMPOTENCY_ROUTES,
// written [METHOD ]PATH=MODE.
type IdempotencyRoute struct {
	// Method is the request method, upper case, or "" for any method
	// (written as no method or "*").
	Method string
	// Path is the request path: exact, or a prefix when it ends in "/*"
	// (/payments/* matches /payments/ and every path below it).
	Path string
	// Mode is IdempotencyOff, IdempotencyOptional or IdempotencyRequired.
	Mode string
}

// String returns the rule as TRACECAR_IDEMPOTENCY_ROUTES writes it, in
// normal form, e.g. "POST /payments/*=required".
func (r IdempotencyRoute) String() string {
	if r.Method == "" {
		return r.Path + "=" + r.Mode
	}
	return r.Method + " " + r.Path + "=" + r.Mode
}

// IdempotencyLeaseOrDefault returns IdempotencyLease, or, when it is 0,
// its default: UpstreamResponseHeaderTimeout plus 10s. Load refuses a 0
// lease while that timeout is 0 (none) and idempotency is enabled.
func (c *Config) IdempotencyLeaseOrDefault() time.Duration {
	if c.IdempotencyLease != 0 {
		return c.IdempotencyLease
	}
	return c.UpstreamResponseHeaderTimeout + idempotencyLeaseMargin
}

// checkIdempotencyRoutes stores the rules of raw in c.IdempotencyRoutes,
// nil for the empty text.
func checkIdempotencyRoutes(c *Config, f field, raw string) *Error {
	routes, rule, reason := parseRoutes(raw)
	switch {
	case reason == "":
		c.IdempotencyRoutes = routes
		return nil
	case rule != "":
		return f.fail(raw, "rule "+strconv.Quote(truncate(rule))+": "+reason)
	}
	return f.fail(raw, reason)
}

// parseRoutes parses a comma list of [METHOD ]PATH=MODE rules, spaces
// around them ignored. The empty text is no rule (nil); a text that names
// none, such as " , ", is refused. A rule that an earlier one makes
// unreachable is refused too: first match wins, so it would never apply.
// On failure it returns the bad rule, if one is to blame, and the reason.
func parseRoutes(raw string) (routes []IdempotencyRoute, rule, reason string) {
	if raw == "" {
		return nil, "", ""
	}
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r, reason := parseRoute(item)
		if reason != "" {
			return nil, item, reason
		}
		for _, earlier := range routes {
			if shadows(earlier, r) {
				return nil, item, "never matches, rule " + strconv.Quote(truncate(earlier.String())) + " comes first"
			}
		}
		if len(routes) == maxIdempotencyRoutes {
			return nil, "", fmt.Sprintf("more than %d rules", maxIdempotencyRoutes)
		}
		routes = append(routes, r)
	}
	if len(routes) == 0 {
		return nil, "", "no rule named"
	}
	return routes, "", ""
}

// parseRoute parses one rule, trimmed.
func parseRoute(s string) (IdempotencyRoute, string) {
	var r IdempotencyRoute
	i := strings.LastIndexByte(s, '=')
	if i < 0 {
		return r, "missing =MODE"
	}
	switch mode := strings.ToLower(strings.TrimSpace(s[i+1:])); mode {
	case IdempotencyOff, IdempotencyOptional, IdempotencyRequired:
		r.Mode = mode
	case "":
		return r, "missing mode after ="
	default:
		return r, "unknown mode"
	}
	words := strings.Fields(s[:i])
	switch len(words) {
	case 0:
		return r, "missing path"
	case 1:
		r.Path = words[0]
	case 2:
		r.Method, r.Path = words[0], words[1]
	default:
		return r, "more than a method and a path before ="
	}
	switch {
	case r.Method == "*":
		r.Method = ""
	case r.Method != "" && !isToken(r.Method):
		// RFC 9110 §9.1: method = token.
		return r, "method not a token"
	}
	r.Method = strings.ToUpper(r.Method)
	if reason := checkRoutePath(r.Path); reason != "" {
		return r, reason
	}
	return r, ""
}

// checkRoutePath accepts an absolute path (RFC 9110 §4.2.1 origin-form,
// without the query), optionally ending in "/*".
func checkRoutePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "path does not begin with /"
	}
	body := strings.TrimSuffix(p, "/*")
	if strings.Contains(body, "*") {
		return `"*" only as a final "/*"`
	}
	for i, c := range body {
		switch {
		case c == '?':
			return "query in path"
		case c == '#':
			return "fragment in path"
		case c == '%':
			if i+2 >= len(body) || !isHex(body[i+1]) || !isHex(body[i+2]) {
				return "invalid percent-encoding in path"
			}
		case c <= ' ' || c >= 0x7f:
			return fmt.Sprintf("invalid character %q in path", c)
		}
	}
	for seg := range strings.SplitSeq(body, "/") {
		if seg == "." || seg == ".." {
			// No request path reaches the app with one left.
			return "dot segment in path"
		}
	}
	return ""
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// shadows reports whether the earlier rule e matches every request the
// later rule l matches.
func shadows(e, l IdempotencyRoute) bool {
	if e.Method != "" && e.Method != l.Method {
		return false
	}
	prefix, isPrefix := strings.CutSuffix(e.Path, "*")
	if !isPrefix {
		return e.Path == l.Path
	}
	return strings.HasPrefix(strings.TrimSuffix(l.Path, "*"), prefix)
}

// unsuitableHeaders cannot identify a client or a request: their values
// change between two attempts of one request, or do not arrive as the
// client sent them.
var unsuitableHeaders = map[string]string{
	// RFC 9110 §7.6.1: removed or rewritten by every proxy on the way.
	"Connection": "hop-by-hop header", "Keep-Alive": "hop-by-hop header",
	"Proxy-Connection": "hop-by-hop header", "Proxy-Authorization": "hop-by-hop header",
	"Te": "hop-by-hop header", "Trailer": "hop-by-hop header",
	"Transfer-Encoding": "hop-by-hop header", "Upgrade": "hop-by-hop header",
	// W3C Trace Context: each attempt is a new span, so a new traceparent.
	"Traceparent":     "trace context header, new on every attempt",
	"Tracestate":      "trace context header, new on every attempt",
	"Baggage":         "trace context header, new on every attempt",
	"Idempotency-Key": "the key is part of the scope already",
}

// headerListCheck returns the check of a list of header names that
// stores it, normalised by parseHeaderList, in the field dst returns.
func headerListCheck(dst func(c *Config) *[]string) checkFunc {
	return func(c *Config, f field, raw string) *Error {
		list, entry, reason := parseHeaderList(raw)
		switch {
		case reason == "":
			*dst(c) = list
			return nil
		case entry != "":
			return f.fail(raw, "entry "+strconv.Quote(truncate(entry))+": "+reason)
		}
		return f.fail(raw, reason)
	}
}

// parseHeaderList parses a comma list of header names, spaces around them
// ignored, into canonical names without duplicates, or the word none (an
// empty, not nil, list). On failure it returns the bad entry, if one is
// to blame, and the reason.
func parseHeaderList(raw string) (list []string, entry, reason string) {
	list = []string{}
	if strings.EqualFold(strings.TrimSpace(raw), "none") {
		return list, "", ""
	}
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			continue
		case strings.EqualFold(item, "none"):
			return nil, item, "none cannot be combined with header names"
		case !isToken(item):
			// RFC 9110 §5.1: field-name = token.
			return nil, item, "not a header name"
		}
		name := textproto.CanonicalMIMEHeaderKey(item)
		if why := unsuitableHeaders[name]; why != "" {
			return nil, item, why
		}
		if !slices.Contains(list, name) {
			list = append(list, name)
		}
	}
	if len(list) == 0 {
		return nil, "", "no header named"
	}
	return list, "", ""
}

// checkReleaseStatuses stores the statuses of raw sorted, without
// duplicates. Only error statuses may release a key: releasing a success
// would execute again a request that did what it was asked.
func checkReleaseStatuses(c *Config, f field, raw string) *Error {
	statuses, e := statusList(f, raw)
	if e != nil {
		return e
	}
	for _, s := range statuses {
		if s < 400 {
			return f.fail(raw, fmt.Sprintf("status %d is not an error status (4xx or 5xx)", s))
		}
	}
	c.IdempotencyReleaseStatuses = statuses
	return nil
}

// checkLease refuses a lease under a second, other than 0 (the default).
// Like every custom check it judges raw: a text env cannot parse is left
// to env's reason.
func checkLease(_ *Config, f field, raw string) *Error {
	if d, err := time.ParseDuration(raw); err == nil && d > 0 && d < time.Second {
		return f.fail(raw, "shorter than 1s")
	}
	return nil
}

// checkLeaseDefault refuses the default lease while the upstream response
// header timeout, which it derives from, is 0 (none): no lease would
// outlast every execution.
func checkLeaseDefault(c *Config, f field, raw string) *Error {
	if !c.IdempotencyEnabled || c.IdempotencyLease != 0 || c.UpstreamResponseHeaderTimeout != 0 {
		return nil
	}
	return &Error{
		Var:      f.key,
		Value:    raw,
		Reason:   "no default while TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT is 0 (none)",
		Accepted: "a Go duration >= 1s longer than the slowest request, such as 5m",
	}
}

// checkCacheBytes keeps room in the memory store for the largest response
// stored for replay.
func checkCacheBytes(c *Config, f field, raw string) *Error {
	if !c.IdempotencyEnabled || c.IdempotencyStore != IdempotencyStoreMemory ||
		c.IdempotencyCacheBytes >= c.IdempotencyMaxResponseBytes {
		return nil
	}
	return f.fail(raw, fmt.Sprintf("smaller than TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES (%d)", c.IdempotencyMaxResponseBytes))
}
