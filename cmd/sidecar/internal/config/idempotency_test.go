package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadIdempotencyRoutes(t *testing.T) {
	type r = IdempotencyRoute
	tests := []struct {
		raw  string
		want []IdempotencyRoute
	}{
		{"", nil},
		{"POST /payments/*=required,PATCH /orders/*=optional,/admin/*=off", []r{
			{"POST", "/payments/*", IdempotencyRequired}, {"PATCH", "/orders/*", IdempotencyOptional},
			{"", "/admin/*", IdempotencyOff}}},
		{"post /a=Required", []r{{"POST", "/a", IdempotencyRequired}}},
		{"* /a=off", []r{{"", "/a", IdempotencyOff}}},
		{"  PUT\t/a = OPTIONAL  ,,", []r{{"PUT", "/a", IdempotencyOptional}}},
		{"/*=required", []r{{"", "/*", IdempotencyRequired}}},
		{"/=off", []r{{"", "/", IdempotencyOff}}},
		{"/a=b=off", []r{{"", "/a=b", IdempotencyOff}}}, // the mode follows the last "="
		{"/v1/items/%2F/x=optional", []r{{"", "/v1/items/%2F/x", IdempotencyOptional}}},
		{"M-SEARCH /a=optional", []r{{"M-SEARCH", "/a", IdempotencyOptional}}},
		// Not shadowed: a narrower rule first, a different method, or a
		// path the prefix does not reach.
		{"POST /a/b=required,/a/*=off", []r{{"POST", "/a/b", IdempotencyRequired}, {"", "/a/*", IdempotencyOff}}},
		{"POST /a=required,PATCH /a=off,/a=optional", []r{
			{"POST", "/a", IdempotencyRequired}, {"PATCH", "/a", IdempotencyOff}, {"", "/a", IdempotencyOptional}}},
		{"/a/*=off,/a=required", []r{{"", "/a/*", IdempotencyOff}, {"", "/a", IdempotencyRequired}}},
		{"/ab/*=off,/a/*=required", []r{{"", "/ab/*", IdempotencyOff}, {"", "/a/*", IdempotencyRequired}}},
		{"POST /*=required,/*=off", []r{{"POST", "/*", IdempotencyRequired}, {"", "/*", IdempotencyOff}}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_ROUTES": tt.raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.IdempotencyRoutes, tt.want) {
				t.Errorf("IdempotencyRoutes = %q, want %q", c.IdempotencyRoutes, tt.want)
			}
		})
	}
}

// TestIdempotencyRouteString expects each rule's String to be a rule that
// parses back to it.
func TestIdempotencyRouteString(t *testing.T) {
	routes := []IdempotencyRoute{
		{"POST", "/payments/*", IdempotencyRequired},
		{"", "/a=b", IdempotencyOff},
		{"", "/*", IdempotencyOptional},
	}
	want := []string{"POST /payments/*=required", "/a=b=off", "/*=optional"}
	for i, r := range routes {
		if got := r.String(); got != want[i] {
			t.Errorf("String() = %q, want %q", got, want[i])
		}
		back, rule, reason := parseRoutes(r.String())
		if reason != "" || len(back) != 1 || back[0] != r {
			t.Errorf("parseRoutes(%q) = %v, %q, %q", r.String(), back, rule, reason)
		}
	}
}

// TestLoadIdempotencyRoutesIgnoresIndexedVariables: env reads a slice of
// structs from variables named 0_FIELD, 1_FIELD...; the routes come from
// their own variable only.
func TestLoadIdempotencyRoutesIgnoresIndexedVariables(t *testing.T) {
	for _, raw := range []string{"", "POST /a=required"} {
		c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_ROUTES": raw,
			"0_METHOD": "GET", "0_PATH": "/x", "1_MODE": "off"})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := []IdempotencyRoute(nil)
		if raw != "" {
			want = []IdempotencyRoute{{"POST", "/a", IdempotencyRequired}}
		}
		if !reflect.DeepEqual(c.IdempotencyRoutes, want) {
			t.Errorf("routes %q loaded as %q, want %q", raw, c.IdempotencyRoutes, want)
		}
	}
}

func TestLoadIdempotencyHeaders(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{"", []string{"Authorization"}}, // empty means the default
		{"authorization", []string{"Authorization"}},
		{" x-api-key , X-Tenant ,x-API-key,,", []string{"X-Api-Key", "X-Tenant"}},
		{"Cookie,Host", []string{"Cookie", "Host"}},
		{"none", []string{}},
		{" NONE ", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream,
				"TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS": tt.raw, "TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS": tt.raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.IdempotencyPrincipalHeaders, tt.want) {
				t.Errorf("IdempotencyPrincipalHeaders = %q, want %q", c.IdempotencyPrincipalHeaders, tt.want)
			}
			want := tt.want
			if tt.raw == "" {
				want = []string{"Content-Type"}
			}
			if !reflect.DeepEqual(c.IdempotencyFingerprintHeaders, want) {
				t.Errorf("IdempotencyFingerprintHeaders = %q, want %q", c.IdempotencyFingerprintHeaders, want)
			}
		})
	}
}

func TestLoadIdempotencyReleaseStatuses(t *testing.T) {
	tests := []struct {
		raw  string
		want []int
	}{
		{"", []int{429}},
		{"503, 429", []int{429, 503}},
		{"408,429,502-504", []int{408, 429, 502, 503, 504}},
		{"400-400", []int{400}},
		{"none", []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_RELEASE_STATUSES": tt.raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.IdempotencyReleaseStatuses, tt.want) {
				t.Errorf("IdempotencyReleaseStatuses = %v, want %v", c.IdempotencyReleaseStatuses, tt.want)
			}
			// The breaker's list, which shares the parser, keeps its own.
			if !reflect.DeepEqual(c.BreakerFailureStatuses, []int{500, 502, 503, 504}) {
				t.Errorf("BreakerFailureStatuses = %v", c.BreakerFailureStatuses)
			}
		})
	}
}

func TestLoadIdempotencyEdgeValues(t *testing.T) {
	tests := []struct {
		env   map[string]string
		check func(c *Config) bool
	}{
		{map[string]string{"TRACECAR_IDEMPOTENCY_LEASE": "1s", "TRACECAR_IDEMPOTENCY_RETENTION": "1s",
			"TRACECAR_IDEMPOTENCY_WAIT": "1ns"},
			func(c *Config) bool {
				return c.IdempotencyLease == time.Second && c.IdempotencyRetention == time.Second && c.IdempotencyWait == 1
			}},
		{map[string]string{"TRACECAR_IDEMPOTENCY_LEASE": "0"},
			func(c *Config) bool {
				return c.IdempotencyLease == 0 && c.IdempotencyLeaseOrDefault() == 40*time.Second
			}},
		{map[string]string{"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "2m"},
			func(c *Config) bool { return c.IdempotencyLeaseOrDefault() == 130*time.Second }},
		{map[string]string{"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0s", "TRACECAR_IDEMPOTENCY_LEASE": "5m"},
			func(c *Config) bool { return c.IdempotencyLeaseOrDefault() == 5*time.Minute }},
		// Disabled, nothing depends on the lease, the store or the budget.
		{map[string]string{"TRACECAR_IDEMPOTENCY_ENABLED": "false", "TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0s",
			"TRACECAR_IDEMPOTENCY_STORE": "redis", "TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "1073741824"},
			func(c *Config) bool {
				return !c.IdempotencyEnabled && c.IdempotencyLease == 0 && c.RedisURL == "" &&
					c.IdempotencyCacheBytes < c.IdempotencyMaxResponseBytes
			}},
		// The redis store has no local budget to fit.
		{map[string]string{"TRACECAR_IDEMPOTENCY_STORE": "REDIS", "TRACECAR_REDIS_URL": "redis://redis",
			"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "1073741824", "TRACECAR_IDEMPOTENCY_CACHE_BYTES": "1048576"},
			func(c *Config) bool {
				return c.IdempotencyStore == IdempotencyStoreRedis && c.IdempotencyMaxResponseBytes == 1<<30
			}},
		// A URL with the memory store is checked, and kept.
		{map[string]string{"TRACECAR_REDIS_URL": "redis://redis"},
			func(c *Config) bool {
				return c.IdempotencyStore == IdempotencyStoreMemory && c.RedisURL == "redis://redis"
			}},
		{map[string]string{"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "1073741824", "TRACECAR_IDEMPOTENCY_CACHE_BYTES": "1073741824",
			"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES": "1", "TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT": "1"},
			func(c *Config) bool {
				return c.IdempotencyCacheBytes == 1<<30 && c.IdempotencyMaxRequestBytes == 1 && c.IdempotencyMaxInFlight == 1
			}},
		{map[string]string{"TRACECAR_IDEMPOTENCY_CACHE_BYTES": "1099511627776", "TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "0"},
			func(c *Config) bool { return c.IdempotencyCacheBytes == 1<<40 && c.IdempotencyMaxResponseBytes == 0 }},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			env := map[string]string{"TRACECAR_UPSTREAM": upstream}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(env)
			if err != nil {
				t.Fatalf("Load(%v): %v", tt.env, err)
			}
			if !tt.check(c) {
				t.Errorf("%v loaded as %+v", tt.env, c)
			}
		})
	}
}

const (
	wantRoutes    = "want a comma-separated list of [METHOD ]PATH=MODE rules, PATH exact or ending in /*, MODE off, optional or required, such as POST /payments/*=required,/admin/*=off"
	wantPrincipal = "want a comma-separated list of header names such as Authorization,X-Api-Key, or none"
	wantFinger    = "want a comma-separated list of header names such as Content-Type,Content-Encoding, or none"
	wantRelease   = "want a comma-separated list of status codes 400-599 and ranges such as 429,503, or none"
	wantLease     = "want 0 or a Go duration >= 1s such as 40s"
	wantRetention = "want a Go duration >= 1s such as 24h or 90m"
	wantCache     = "want an integer 1048576-1099511627776, at least TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES"
)

func TestLoadIdempotencyErrors(t *testing.T) {
	const (
		routes    = "TRACECAR_IDEMPOTENCY_ROUTES"
		principal = "TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS"
		finger    = "TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS"
		release   = "TRACECAR_IDEMPOTENCY_RELEASE_STATUSES"
	)
	var many strings.Builder
	for i := range 257 {
		fmt.Fprintf(&many, "/r%d=off,", i)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"enabled maybe", map[string]string{"TRACECAR_IDEMPOTENCY_ENABLED": "maybe"},
			`TRACECAR_IDEMPOTENCY_ENABLED="maybe": not true or false; want true or false`},

		// TRACECAR_IDEMPOTENCY_ROUTES
		{"route without mode", map[string]string{routes: "POST /a"},
			`TRACECAR_IDEMPOTENCY_ROUTES="POST /a": rule "POST /a": missing =MODE; ` + wantRoutes},
		{"route empty mode", map[string]string{routes: "/a=required,/b="},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a=required,/b=": rule "/b=": missing mode after =; ` + wantRoutes},
		{"route unknown mode", map[string]string{routes: "/a=on"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a=on": rule "/a=on": unknown mode; ` + wantRoutes},
		{"route without path", map[string]string{routes: "=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="=off": rule "=off": missing path; ` + wantRoutes},
		{"route method only", map[string]string{routes: "POST=required"},
			`TRACECAR_IDEMPOTENCY_ROUTES="POST=required": rule "POST=required": path does not begin with /; ` + wantRoutes},
		{"route relative path", map[string]string{routes: "POST payments=required"},
			`TRACECAR_IDEMPOTENCY_ROUTES="POST payments=required": rule "POST payments=required": path does not begin with /; ` + wantRoutes},
		{"route three words", map[string]string{routes: "POST /a /b=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="POST /a /b=off": rule "POST /a /b=off": more than a method and a path before =; ` + wantRoutes},
		{"route bad method", map[string]string{routes: "PO(ST /a=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="PO(ST /a=off": rule "PO(ST /a=off": method not a token; ` + wantRoutes},
		{"route star inside", map[string]string{routes: "/a/*/b=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a/*/b=off": rule "/a/*/b=off": "*" only as a final "/*"; ` + wantRoutes},
		{"route star suffix without slash", map[string]string{routes: "/pay*=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/pay*=off": rule "/pay*=off": "*" only as a final "/*"; ` + wantRoutes},
		{"route query", map[string]string{routes: "/a?b=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a?b=off": rule "/a?b=off": query in path; ` + wantRoutes},
		{"route fragment", map[string]string{routes: "/a#b=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a#b=off": rule "/a#b=off": fragment in path; ` + wantRoutes},
		{"route bad escape", map[string]string{routes: "/a%2=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a%2=off": rule "/a%2=off": invalid percent-encoding in path; ` + wantRoutes},
		{"route non-ASCII", map[string]string{routes: "/café=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/café=off": rule "/café=off": invalid character 'é' in path; ` + wantRoutes},
		{"route dot segment", map[string]string{routes: "/a/../b=off"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a/../b=off": rule "/a/../b=off": dot segment in path; ` + wantRoutes},
		{"route shadowed by catch-all", map[string]string{routes: "/*=off,POST /payments/*=required"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/*=off,POST /payments/*=required": rule "POST /payments/*=required": never matches, rule "/*=off" comes first; ` + wantRoutes},
		{"route shadowed by prefix", map[string]string{routes: "POST /a/*=off,post /a/b=required"},
			`TRACECAR_IDEMPOTENCY_ROUTES="POST /a/*=off,post /a/b=required": rule "post /a/b=required": never matches, rule "POST /a/*=off" comes first; ` + wantRoutes},
		{"route repeated", map[string]string{routes: "/a=off,* /a=required"},
			`TRACECAR_IDEMPOTENCY_ROUTES="/a=off,* /a=required": rule "* /a=required": never matches, rule "/a=off" comes first; ` + wantRoutes},
		{"no route", map[string]string{routes: " , "},
			`TRACECAR_IDEMPOTENCY_ROUTES=" , ": no rule named; ` + wantRoutes},
		{"too many routes", map[string]string{routes: many.String()},
			`TRACECAR_IDEMPOTENCY_ROUTES="/r0=off,/r1=off,/r2=off,/r3=off,/r4=off,/r5=off,/r6=off,/r7=off,…": more than 256 rules; ` + wantRoutes},

		// TRACECAR_IDEMPOTENCY_STORE and TRACECAR_REDIS_URL
		{"unknown store", map[string]string{"TRACECAR_IDEMPOTENCY_STORE": "disk"},
			`TRACECAR_IDEMPOTENCY_STORE="disk": unknown value; want one of memory or redis`},
		{"redis without URL", map[string]string{"TRACECAR_IDEMPOTENCY_STORE": "redis"},
			`TRACECAR_REDIS_URL: not set while TRACECAR_IDEMPOTENCY_STORE=redis; ` + wantRedisURL},
		// Durations
		{"retention 0", map[string]string{"TRACECAR_IDEMPOTENCY_RETENTION": "0s"},
			`TRACECAR_IDEMPOTENCY_RETENTION="0s": shorter than 1s; ` + wantRetention},
		{"retention 999ms", map[string]string{"TRACECAR_IDEMPOTENCY_RETENTION": "999ms"},
			`TRACECAR_IDEMPOTENCY_RETENTION="999ms": shorter than 1s; ` + wantRetention},
		{"retention in days", map[string]string{"TRACECAR_IDEMPOTENCY_RETENTION": "1d"},
			`TRACECAR_IDEMPOTENCY_RETENTION="1d": not a duration; ` + wantRetention},
		{"lease 500ms", map[string]string{"TRACECAR_IDEMPOTENCY_LEASE": "500ms"},
			`TRACECAR_IDEMPOTENCY_LEASE="500ms": shorter than 1s; ` + wantLease},
		{"lease negative", map[string]string{"TRACECAR_IDEMPOTENCY_LEASE": "-1s"},
			`TRACECAR_IDEMPOTENCY_LEASE="-1s": negative duration; ` + wantLease},
		{"lease garbage", map[string]string{"TRACECAR_IDEMPOTENCY_LEASE": "long"},
			`TRACECAR_IDEMPOTENCY_LEASE="long": not a duration; ` + wantLease},
		{"default lease without header timeout", map[string]string{"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0s"},
			`TRACECAR_IDEMPOTENCY_LEASE="0s": no default while TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT is 0 (none); want a Go duration >= 1s longer than the slowest request, such as 5m`},
		{"zero lease without header timeout", map[string]string{"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0s",
			"TRACECAR_IDEMPOTENCY_LEASE": "0"},
			`TRACECAR_IDEMPOTENCY_LEASE="0": no default while TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT is 0 (none); want a Go duration >= 1s longer than the slowest request, such as 5m`},
		{"wait negative", map[string]string{"TRACECAR_IDEMPOTENCY_WAIT": "-1ms"},
			`TRACECAR_IDEMPOTENCY_WAIT="-1ms": negative duration; ` + wantDuration},

		// Sizes
		{"request bytes 0", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES": "0"},
			`TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES="0": out of range; want an integer 1-1073741824`},
		{"request bytes over 1 GiB", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES": "1073741825"},
			`TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES="1073741825": out of range; want an integer 1-1073741824`},
		{"request bytes with unit", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES": "1MiB"},
			`TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES="1MiB": not an integer; want an integer 1-1073741824`},
		{"response bytes negative", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "-1"},
			`TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES="-1": out of range; want an integer 0-1073741824`},
		{"cache bytes under 1 MiB", map[string]string{"TRACECAR_IDEMPOTENCY_CACHE_BYTES": "1048575"},
			`TRACECAR_IDEMPOTENCY_CACHE_BYTES="1048575": out of range; ` + wantCache},
		{"cache bytes over 1 TiB", map[string]string{"TRACECAR_IDEMPOTENCY_CACHE_BYTES": "1099511627777"},
			`TRACECAR_IDEMPOTENCY_CACHE_BYTES="1099511627777": out of range; ` + wantCache},
		{"cache bytes beyond int64", map[string]string{"TRACECAR_IDEMPOTENCY_CACHE_BYTES": "99999999999999999999"},
			`TRACECAR_IDEMPOTENCY_CACHE_BYTES="99999999999999999999": out of range; ` + wantCache},
		{"cache smaller than a response", map[string]string{"TRACECAR_IDEMPOTENCY_CACHE_BYTES": "2097152",
			"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "2097153"},
			`TRACECAR_IDEMPOTENCY_CACHE_BYTES="2097152": smaller than TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES (2097153); ` + wantCache},
		{"default cache smaller than a response", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "1073741824"},
			`TRACECAR_IDEMPOTENCY_CACHE_BYTES="67108864": smaller than TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES (1073741824); ` + wantCache},
		{"in flight 0", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT": "0"},
			`TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT="0": out of range; want an integer 1-10000000`},
		{"in flight too many", map[string]string{"TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT": "10000001"},
			`TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT="10000001": out of range; want an integer 1-10000000`},

		// Header lists
		{"principal header with space", map[string]string{principal: "Authorization,X Api Key"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="Authorization,X Api Key": entry "X Api Key": not a header name; ` + wantPrincipal},
		{"principal header with colon", map[string]string{principal: "Authorization:"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="Authorization:": entry "Authorization:": not a header name; ` + wantPrincipal},
		{"principal traceparent", map[string]string{principal: "traceparent"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="traceparent": entry "traceparent": trace context header, new on every attempt; ` + wantPrincipal},
		{"principal hop-by-hop", map[string]string{principal: "Authorization,connection"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="Authorization,connection": entry "connection": hop-by-hop header; ` + wantPrincipal},
		{"principal the key", map[string]string{principal: "Idempotency-Key"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="Idempotency-Key": entry "Idempotency-Key": the key is part of the scope already; ` + wantPrincipal},
		{"principal none with others", map[string]string{principal: "none,Authorization"},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS="none,Authorization": entry "none": none cannot be combined with header names; ` + wantPrincipal},
		{"principal no header", map[string]string{principal: ","},
			`TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS=",": no header named; ` + wantPrincipal},
		{"fingerprint tracestate", map[string]string{finger: "Content-Type,Tracestate"},
			`TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS="Content-Type,Tracestate": entry "Tracestate": trace context header, new on every attempt; ` + wantFinger},
		{"fingerprint transfer encoding", map[string]string{finger: "transfer-encoding"},
			`TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS="transfer-encoding": entry "transfer-encoding": hop-by-hop header; ` + wantFinger},
		{"fingerprint non-ASCII", map[string]string{finger: "Contént-Type"},
			`TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS="Contént-Type": entry "Contént-Type": not a header name; ` + wantFinger},
		{"fingerprint no header", map[string]string{finger: " , ,"},
			`TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS=" , ,": no header named; ` + wantFinger},

		// TRACECAR_IDEMPOTENCY_RELEASE_STATUSES
		{"release success", map[string]string{release: "429,200"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="429,200": status 200 is not an error status (4xx or 5xx); ` + wantRelease},
		{"release range from 3xx", map[string]string{release: "399-400"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="399-400": status 399 is not an error status (4xx or 5xx); ` + wantRelease},
		{"release 600", map[string]string{release: "600"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="600": entry "600": out of range; ` + wantRelease},
		{"release class", map[string]string{release: "4xx"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="4xx": entry "4xx": not a status code or range; ` + wantRelease},
		{"release reversed", map[string]string{release: "504-502"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="504-502": entry "504-502": range reversed; ` + wantRelease},
		{"release none with others", map[string]string{release: "429,none"},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES="429,none": entry "none": none cannot be combined with statuses; ` + wantRelease},
		{"release no status", map[string]string{release: ","},
			`TRACECAR_IDEMPOTENCY_RELEASE_STATUSES=",": no status named; ` + wantRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadError(t, tt.env, tt.want) })
	}
}
