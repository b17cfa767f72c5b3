package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// checkRedisRequired requires TRACECAR_REDIS_URL with the redis store.
func checkRedisRequired(c *Config, f field, _ string) *Error {
	if !c.IdempotencyEnabled || c.IdempotencyStore != IdempotencyStoreRedis || c.RedisURL != "" {
		return nil
	}
	return f.fail("", "not set while TRACECAR_IDEMPOTENCY_STORE=redis")
}

// checkRedisURL accepts what go-redis's ParseURL accepts, a little more
// strictly: redis:// or rediss:// with a host, an optional port 1-65535
// and an optional /db number, or unix:// with an absolute socket path;
// user info allowed; of the query options only db. The value is shown
// with its user info masked, and a reason quotes at most the scheme or
// what url.Parse says of the masked text, so that an error never carries
// a password.
func checkRedisURL(_ *Config, f field, raw string) *Error {
	if raw == "" {
		return nil
	}
	shown := redactUserInfo(raw)
	u, err := url.Parse(raw)
	if err != nil {
		if shown != raw {
			if _, err = url.Parse(shown); err == nil {
				return f.fail(shown, "invalid user info")
			}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return f.fail(shown, "not a URL: "+err.Error())
	}
	switch u.Scheme {
	case "redis", "rediss":
		if reason := checkRedisTCP(u); reason != "" {
			return f.fail(shown, reason)
		}
	case "unix":
		switch {
		case u.Opaque != "":
			return f.fail(shown, "socket path not absolute")
		case u.Host != "":
			return f.fail(shown, "host not allowed, only a socket path as in unix:///run/redis.sock")
		case u.Path == "" || u.Path == "/":
			return f.fail(shown, "missing socket path")
		}
	case "":
		return f.fail(shown, "missing scheme")
	default:
		switch {
		case isDigits(u.Opaque):
			// "localhost:6379" parses as scheme "localhost".
			return f.fail(shown, "missing redis:// before host:port")
		case shown != raw && !strings.HasPrefix(raw[len(u.Scheme):], "://"):
			// The "scheme" is likely a user name.
			return f.fail(shown, "missing redis:// before the user info")
		}
		return f.fail(shown, fmt.Sprintf("scheme %q not supported", truncate(u.Scheme)))
	}
	if u.Fragment != "" {
		return f.fail(shown, "fragment not allowed")
	}
	if reason := checkRedisQuery(u, u.Scheme != "unix"); reason != "" {
		return f.fail(shown, reason)
	}
	return nil
}

// checkRedisTCP checks the host, port and path of a redis:// or rediss://
// URL.
func checkRedisTCP(u *url.URL) string {
	if u.Opaque != "" {
		return "missing // after the scheme"
	}
	host := u.Hostname()
	if host == "" {
		return "missing host"
	}
	if _, err := netip.ParseAddr(host); err != nil && checkHostname(strings.TrimSuffix(host, ".")) != "" {
		return "invalid host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "port out of range"
		}
	}
	switch segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' }); len(segs) {
	case 0:
	case 1:
		if !isDBNumber(segs[0]) {
			return "database number not a non-negative integer"
		}
	default:
		return "path other than /db"
	}
	return ""
}

// checkRedisQuery accepts the query option db, once, unless the path
// names the database already (pathIsDB: the path of a TCP URL is /db).
func checkRedisQuery(u *url.URL, pathIsDB bool) string {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "invalid query"
	}
	for name, values := range q {
		if name != "db" {
			return "query option other than db"
		}
		switch {
		case len(values) > 1 || pathIsDB && strings.Trim(u.Path, "/") != "":
			return "database number given twice"
		case !isDBNumber(values[0]):
			return "database number not a non-negative integer"
		}
	}
	return ""
}

// isDBNumber reports whether s is a decimal database number go-redis can
// read (strconv.Atoi) and Redis can select.
func isDBNumber(s string) bool {
	if !isDigits(s) {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 32)
	return err == nil
}

// redactUserInfo masks everything between the scheme's "://" (or the
// start, without one) and the last "@" of s. It masks more than redact:
// a password holding "/", "?" or "#" unencoded is still masked.
func redactUserInfo(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s[:at], "://"); i >= 0 && isScheme(s[:i]) {
		start = i + len("://")
	}
	return s[:start] + "xxxxx" + s[at:]
}

// isScheme reports whether s is a URL scheme (RFC 3986 §3.1):
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || isDigits(s[:1]) || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.' {
			return false
		}
	}
	return true
}
