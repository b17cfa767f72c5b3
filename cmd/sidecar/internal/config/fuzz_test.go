package config

import (
	"errors"
	"math"
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
