package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// checkFunc validates one variable beyond what its tags express, and may
// store a normalised value in c. raw is the variable's text (or default).
type checkFunc func(c *Config, f field, raw string) *Error

// custom holds the checks of the variables whose rules tags cannot express.
// A custom check is also asked for the reason when env cannot parse the
// text, so it must judge raw itself, not the parsed field.
var custom = map[string]checkFunc{
	"TRACECAR_UPSTREAM":                 checkUpstream,
	"TRACECAR_INBOUND_ADDR":             checkAddr,
	"TRACECAR_ADMIN_ADDR":               checkAddr,
	"TRACECAR_CORRELATION_HEADER":       checkHeaderName,
	"TRACECAR_EGRESS_ADDR":              checkAddr,
	"TRACECAR_EGRESS_GRPC_ADDR":         checkAddr,
	"TRACECAR_EGRESS_ALLOW":             checkEgressAllow,
	"TRACECAR_BREAKER_FAILURE_RATIO":    checkRatio,
	"TRACECAR_BREAKER_FAILURE_STATUSES": checkFailureStatuses,
	"TRACECAR_IDEMPOTENCY_ROUTES":       checkIdempotencyRoutes,
	"TRACECAR_REDIS_URL":                checkRedisURL,
	"TRACECAR_IDEMPOTENCY_LEASE":        checkLease,
	"TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS": headerListCheck(func(c *Config) *[]string {
		return &c.IdempotencyPrincipalHeaders
	}),
	"TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS": headerListCheck(func(c *Config) *[]string {
		return &c.IdempotencyFingerprintHeaders
	}),
	"TRACECAR_IDEMPOTENCY_RELEASE_STATUSES": checkReleaseStatuses,
}

// relations holds the checks of a variable against those declared before
// it. They run only once the variable itself passed its checks, so they
// judge parsed fields.
var relations = map[string]checkFunc{
	"TRACECAR_TLS_KEY_FILE":             checkTLSPair,
	"TRACECAR_BREAKER_FAILURE_RATIO":    checkTripRules,
	"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": checkMaxOpenTimeout,
	"TRACECAR_REDIS_URL":                checkRedisRequired,
	"TRACECAR_IDEMPOTENCY_LEASE":        checkLeaseDefault,
	"TRACECAR_IDEMPOTENCY_CACHE_BYTES":  checkCacheBytes,
}

// parsers extends env's parsers for the types whose text is more than a
// plain comma list; the custom check of the variable says why a text
// does not parse.
var parsers = map[reflect.Type]env.ParserFunc{
	reflect.TypeFor[[]int](): func(raw string) (any, error) {
		statuses, _, reason := parseStatuses(raw)
		if reason != "" {
			return nil, errors.New(reason)
		}
		return statuses, nil
	},
	reflect.TypeFor[[]IdempotencyRoute](): func(raw string) (any, error) {
		routes, _, reason := parseRoutes(raw)
		if reason != "" {
			return nil, errors.New(reason)
		}
		return routes, nil
	},
}

func checkUpstream(c *Config, f field, raw string) *Error {
	u, e := parseHTTPURL(f, raw)
	if e != nil {
		return e
	}
	if u.RawQuery != "" || u.ForceQuery {
		return f.fail(redact(raw), "query not allowed")
	}
	if u.Fragment != "" {
		return f.fail(redact(raw), "fragment not allowed")
	}
	if u.User != nil {
		// Credentials in the URL would be logged and are not sent anyway.
		return f.fail(redact(raw), "user info not allowed")
	}
	c.Upstream = u
	return nil
}

// parseHTTPURL parses raw as an absolute http or https URL with a host and,
// if given, a port 1-65535.
func parseHTTPURL(f field, raw string) (*url.URL, *Error) {
	if raw == "" {
		return nil, f.fail("", "empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, f.fail(redact(raw), "not a URL: "+err.Error())
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return nil, f.fail(redact(raw), "missing scheme")
	default:
		if isDigits(u.Opaque) {
			// "localhost:8080" parses as scheme "localhost".
			return nil, f.fail(redact(raw), "missing http:// before host:port")
		}
		return nil, f.fail(redact(raw), fmt.Sprintf("scheme %q not supported", truncate(u.Scheme)))
	}
	if u.Host == "" {
		return nil, f.fail(redact(raw), "missing host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, f.fail(redact(raw), "port out of range")
		}
	}
	return u, nil
}

// redact masks the user info of a URL-like string, even one that does not
// parse, so that an error message never carries a password.
func redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:i+3] + "xxxxx" + rest[at:]
}

// checkAddr accepts a listen address host:port with a numeric port 0-65535
// and a host that is empty, an IP address or a host name.
func checkAddr(_ *Config, f field, raw string) *Error {
	host, port, err := net.SplitHostPort(raw)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return f.fail(raw, ae.Err)
		}
		return f.fail(raw, err.Error())
	}
	if port == "" {
		return f.fail(raw, "missing port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return f.fail(raw, "port out of range")
		}
		return f.fail(raw, "port not a number")
	}
	if !validHost(host) {
		return f.fail(raw, "invalid host")
	}
	return nil
}

func validHost(h string) bool {
	if h == "" {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// reservedHeaders cannot carry the correlation ID: hop-by-hop headers are
// removed by every proxy (RFC 9110 §7.6.1), framing headers describe the
// message, and the trace context headers belong to W3C Trace Context.
var reservedHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true,
	"Traceparent": true, "Tracestate": true, "Traceresponse": true, "Baggage": true,
}

// checkHeaderName accepts an HTTP field name. The name is kept as written;
// http.Header methods canonicalise it.
func checkHeaderName(_ *Config, f field, raw string) *Error {
	// RFC 9110 §5.1: field-name = token.
	if !isToken(raw) {
		return f.fail(raw, "not a header name")
	}
	if reservedHeaders[textproto.CanonicalMIMEHeaderKey(raw)] {
		return f.fail(raw, "reserved header name")
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token: 1*tchar.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// isTchar: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
// / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkTLSPair requires the certificate and key together.
func checkTLSPair(c *Config, f field, raw string) *Error {
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		return f.fail(raw, "unset while TRACECAR_TLS_CERT_FILE is set; give both or neither")
	case c.TLSCertFile == "" && c.TLSKeyFile != "":
		return f.fail(raw, "set without TRACECAR_TLS_CERT_FILE; give both or neither")
	}
	return nil
}
