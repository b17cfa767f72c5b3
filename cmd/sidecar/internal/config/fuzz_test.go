package config

import (
	"errors"
	"math"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzLoad sets one variable to an arbitrary value. Load must never panic;
// it either accepts the value, giving a Config that keeps every bound, or
// returns an *Error whose message is one short line naming a variable.
func FuzzLoad(f *testing.F) {
	keys := []string{}
	for _, ty := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[otelEnv]()} {
		for _, fl := range fieldsOf(ty) {
			keys = append(keys, fl.key)
		}
	}
	for i, v := range []string{
		"http://127.0.0.1:8080", ":15006", "127.0.0.1:15000", "X-Correlation-ID", "128", "true",
		"info", "json", "false", "0s", "-5s", "65536", "-1", "10s", "abc", "5", "30s", "90s",
		"1024", "1m", "2048", "512", "svc", "a=b", "http://[::1", "localhost:4317", "grpc",
		"http/json", "k=v", "jaeger_remote", "1.5", "b3,none", "TRUE", strings.Repeat("é", 100),
		"5000", "30000", "0", " 7 ", "+1", "2147483648", "1048577", "99999999999999999999",
		"api.example.com:443,*.internal,10.0.0.0/8", "[::1]:443", "10.1.2.3/8", "*.", "a..b", "::1",
		"500-599", "none", "429, 503", "600", "0.5", "-0", "NaN", "1e400", "100ms", "1000000", "2m",
		"127.0.0.1:15001", " , ",
		"POST /payments/*=required,PATCH /orders/*=optional,/admin/*=off", "/*=off,/a=on", "* /a b=off",
		"redis", "redis://:pw@redis:6379/0", "rediss://u:p/w@h", "unix:///run/redis.sock?db=1", "redis://h?db=1&db=2",
		"24h", "999ms", "1073741824", "1099511627776", "1048575", "10000000",
		"Authorization,X-Api-Key", "traceparent", "none,Content-Type", "429,503", "200-599", "/a%zz=off",
	} {
		f.Add(uint8(i), v)
	}
	f.Fuzz(func(t *testing.T, idx uint8, value string) {
		key := keys[int(idx)%len(keys)]
		environ := map[string]string{"TRACECAR_UPSTREAM": "http://127.0.0.1:8080", key: value}
		c, err := Load(environ)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%s=%q: error %T %v is not *Error", key, value, err, err)
			}
			msg := err.Error()
			// A small OTEL_BSP_MAX_QUEUE_SIZE makes the default batch size
			// too large, and so on.
			if ce.Var != key && refusedFor[ce.Var] != key {
				t.Fatalf("%s=%q: error names %s: %s", key, value, ce.Var, msg)
			}
			if !strings.HasPrefix(msg, ce.Var) || strings.ContainsAny(msg, "\r\n") ||
				utf8.RuneCountInString(msg) > 800 || !strings.Contains(msg, "; want ") {
				t.Fatalf("%s=%q: bad message %q", key, value, msg)
			}
			return
		}
		if c.Upstream == nil || c.Upstream.Host == "" {
			t.Fatalf("%s=%q: no upstream: %+v", key, value, c)
		}
		v := reflect.ValueOf(c).Elem()
		for _, fl := range fieldsOf(v.Type()) {
			fv := v.Field(fl.index)
			if fl.sf.Type == durationType {
				if time.Duration(fv.Int()) < fl.minDuration() {
					t.Fatalf("%s=%q: %s = %v below its minimum", key, value, fl.key, fv.Interface())
				}
				continue
			}
			if !isInt(fv.Kind()) {
				continue
			}
			if lo, ok := fl.intTag("min"); ok && fv.Int() < lo {
				t.Fatalf("%s=%q: %s = %v below %d", key, value, fl.key, fv.Interface(), lo)
			}
			if hi, ok := fl.intTag("max"); ok && fv.Int() > hi {
				t.Fatalf("%s=%q: %s = %v above %d", key, value, fl.key, fv.Interface(), hi)
			}
		}
		checkEgressBreaker(t, key+"="+value, c)
		checkIdempotency(t, key+"="+value, c)
		o := c.OTel
		const longest = 2147483647 * time.Millisecond
		if o.BSPScheduleDelay < time.Millisecond || o.BSPScheduleDelay > longest ||
			o.BSPScheduleDelay%time.Millisecond != 0 {
			t.Fatalf("%s=%q: schedule delay %v", key, value, o.BSPScheduleDelay)
		}
		if o.BSPExportTimeout < time.Millisecond || o.BSPExportTimeout > longest ||
			o.BSPExportTimeout%time.Millisecond != 0 {
			t.Fatalf("%s=%q: export timeout %v", key, value, o.BSPExportTimeout)
		}
		if o.BSPMaxQueueSize < 1 || o.BSPMaxQueueSize > 1<<20 {
			t.Fatalf("%s=%q: queue size %d", key, value, o.BSPMaxQueueSize)
		}
		if o.BSPMaxExportBatchSize < 1 || o.BSPMaxExportBatchSize > o.BSPMaxQueueSize {
			t.Fatalf("%s=%q: batch %d, queue %d", key, value, o.BSPMaxExportBatchSize, o.BSPMaxQueueSize)
		}
		if r := c.OTel.SamplerArg; !(r >= 0 && r <= 1) {
			t.Fatalf("%s=%q: sampler arg %v", key, value, r)
		}
	})
}

// checkEgressBreaker checks the invariants of the egress and breaker
// settings that their tags cannot express.
func checkEgressBreaker(t *testing.T, input string, c *Config) {
	t.Helper()
	if c.EgressAllow != nil && len(c.EgressAllow) == 0 {
		t.Fatalf("%s: EgressAllow empty but not nil", input)
	}
	seen := map[string]bool{}
	for _, e := range c.EgressAllow {
		if again, reason := normalizeDestination(e); reason != "" || again != e || seen[e] ||
			e != strings.ToLower(strings.TrimSpace(e)) || strings.Contains(e, ",") {
			t.Fatalf("%s: allow entry %q not normal (%q %s) or repeated", input, e, again, reason)
		}
		seen[e] = true
	}
	if c.BreakerFailureStatuses == nil {
		t.Fatalf("%s: BreakerFailureStatuses nil", input)
	}
	for i, st := range c.BreakerFailureStatuses {
		if st < 100 || st > 599 || (i > 0 && st <= c.BreakerFailureStatuses[i-1]) {
			t.Fatalf("%s: statuses %v not sorted, unique, 100-599", input, c.BreakerFailureStatuses)
		}
	}
	if r := c.BreakerFailureRatio; !(r >= 0 && r <= 1) || math.Signbit(r) {
		t.Fatalf("%s: failure ratio %v", input, r)
	}
	if c.BreakerEnabled && c.BreakerConsecutiveFailures == 0 && c.BreakerFailureRatio == 0 {
		t.Fatalf("%s: enabled breaker with both trip rules off", input)
	}
	if c.BreakerMaxOpenTimeout < c.BreakerOpenTimeout {
		t.Fatalf("%s: max open %v < open %v", input, c.BreakerMaxOpenTimeout, c.BreakerOpenTimeout)
	}
}

// checkIdempotency checks the invariants of the idempotency settings that
// their tags cannot express.
func checkIdempotency(t *testing.T, input string, c *Config) {
	t.Helper()
	if c.IdempotencyRoutes != nil && len(c.IdempotencyRoutes) == 0 {
		t.Fatalf("%s: IdempotencyRoutes empty but not nil", input)
	}
	for i, r := range c.IdempotencyRoutes {
		if r.Method != "" && (!isToken(r.Method) || r.Method != strings.ToUpper(r.Method)) ||
			checkRoutePath(r.Path) != "" ||
			(r.Mode != IdempotencyOff && r.Mode != IdempotencyOptional && r.Mode != IdempotencyRequired) {
			t.Fatalf("%s: route %+v not normal", input, r)
		}
		if back, _, reason := parseRoutes(r.String()); reason != "" || len(back) != 1 || back[0] != r {
			t.Fatalf("%s: route %+v does not survive String: %v %s", input, r, back, reason)
		}
		for _, e := range c.IdempotencyRoutes[:i] {
			if shadows(e, r) {
				t.Fatalf("%s: route %v shadowed by %v", input, r, e)
			}
		}
	}
	if len(c.IdempotencyRoutes) > maxIdempotencyRoutes {
		t.Fatalf("%s: %d routes", input, len(c.IdempotencyRoutes))
	}
	for _, list := range [][]string{c.IdempotencyPrincipalHeaders, c.IdempotencyFingerprintHeaders} {
		if list == nil {
			t.Fatalf("%s: header list nil", input)
		}
		seen := map[string]bool{}
		for _, h := range list {
			if !isToken(h) || textproto.CanonicalMIMEHeaderKey(h) != h || unsuitableHeaders[h] != "" || seen[h] {
				t.Fatalf("%s: header list %q not canonical, suitable and unique", input, list)
			}
			seen[h] = true
		}
	}
	if c.IdempotencyReleaseStatuses == nil {
		t.Fatalf("%s: IdempotencyReleaseStatuses nil", input)
	}
	for i, st := range c.IdempotencyReleaseStatuses {
		if st < 400 || st > 599 || (i > 0 && st <= c.IdempotencyReleaseStatuses[i-1]) {
			t.Fatalf("%s: release statuses %v not sorted, unique, 400-599", input, c.IdempotencyReleaseStatuses)
		}
	}
	if c.IdempotencyStore != IdempotencyStoreMemory && c.IdempotencyStore != IdempotencyStoreRedis {
		t.Fatalf("%s: store %q", input, c.IdempotencyStore)
	}
	if c.IdempotencyLease != 0 && c.IdempotencyLease < time.Second {
		t.Fatalf("%s: lease %v", input, c.IdempotencyLease)
	}
	if !c.IdempotencyEnabled {
		return
	}
	if c.IdempotencyStore == IdempotencyStoreRedis && c.RedisURL == "" {
		t.Fatalf("%s: redis store without a URL", input)
	}
	if c.IdempotencyLeaseOrDefault() < time.Second {
		t.Fatalf("%s: effective lease %v", input, c.IdempotencyLeaseOrDefault())
	}
	if c.IdempotencyStore == IdempotencyStoreMemory && c.IdempotencyCacheBytes < c.IdempotencyMaxResponseBytes {
		t.Fatalf("%s: cache %d < response cap %d", input, c.IdempotencyCacheBytes, c.IdempotencyMaxResponseBytes)
	}
}

// FuzzRedisURL puts the password Zq7pw plus arbitrary text in the user
// info of an arbitrary Redis URL. Load either accepts it or refuses it
// with a message that never shows the password.
func FuzzRedisURL(f *testing.F) {
	for _, s := range [][3]string{
		{"redis://", "", "redis:6379/0"}, {"rediss://u", "/x", "h"}, {"redis://", "?", "h"}, {"", "", "h:1"},
		{"unix://", "", "/run/redis.sock?db=1"}, {"redis://", "%zz", "[::1"}, {"http://", "", "h"}, {"redis://", "#", "h:0"},
		{"redis://u", ":x", "h/1/2"}, {"redis:", "", "h"}, {"redis://", "", "h?dial_timeout=1s"}, {"x://y", "", "h"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, head, pw, tail string) {
		const secret = "Zq7pw"
		tail = strings.ReplaceAll(tail, "@", "")
		raw := head + ":" + secret + pw + "@" + tail
		c, err := Load(map[string]string{"TRACECAR_UPSTREAM": "http://127.0.0.1:8080",
			"TRACECAR_IDEMPOTENCY_STORE": "redis", "TRACECAR_REDIS_URL": raw})
		if err == nil {
			if c.RedisURL != raw {
				t.Fatalf("%q loaded as %q", raw, c.RedisURL)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "TRACECAR_REDIS_URL" {
			t.Fatalf("%q: error %v", raw, err)
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("%q: message %q", raw, msg)
		}
	})
}
