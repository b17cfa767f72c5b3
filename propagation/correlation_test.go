package propagation

import (
	"context"
	"strings"
	"testing"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestValidCorrelationID(t *testing.T) {
	cases := []struct {
		name   string
		id     string
		maxLen int
		want   bool
	}{
		{"UUID", "f47ac10b-58cc-4372-a567-0e02b2c3d479", 0, true},
		{"ULID", "01ARZ3NDEKTSV4RRFFQ69G5FAV", 0, true},
		{"32 hex digits (a trace ID)", suiteTraceID, 0, true},
		{"base64url inside", "Zm9v-YmFy_YmF6", 0, true},
		{"base64 with padding", "Zm9v+YmFy/YQ==", 0, true},
		{"compound with ':' '@' '.' '~'", "tenant:order.42@eu~1", 0, true},
		{"single character", "a", 0, true},
		{"zero maxLen means 128: 128 bytes", strings.Repeat("a", 128), 0, true},
		{"zero maxLen means 128: 129 bytes", strings.Repeat("a", 129), 0, false},
		{"negative maxLen means 128", strings.Repeat("a", 129), -1, false},
		{"custom maxLen: at the limit", "abcdefgh", 8, true},
		{"custom maxLen: one over", "abcdefghi", 8, false},
		{"empty", "", 0, false},
		{"space inside", "abc def", 0, false},
		{"leading space", " abc", 0, false},
		{"CR LF header injection", "abc\r\nX-Admin: 1", 0, false},
		{"tab", "abc\tdef", 0, false},
		{"NUL", "abc\x00", 0, false},
		{"DEL", "abc\x7f", 0, false},
		{"non-ASCII", "caf\u00e9", 0, false},
		{"comma (combined repeated header, CSV)", "abc,def", 0, false},
		{"semicolon", "abc;def", 0, false},
		{"double quote", `abc"def`, 0, false},
		{"single quote", "abc'def", 0, false},
		{"backslash", `abc\def`, 0, false},
		{"percent", "abc%0d", 0, false},
		{"angle bracket", "abc<script>", 0, false},
		{"formula injection: leading =", "=cmd|' /C calc'!A0", 0, false},
		{"formula injection: leading +", "+1234", 0, false},
		{"formula injection: leading -", "-1234", 0, false},
		{"formula injection: leading @", "@SUM", 0, false},
		{"leading underscore", "_abc", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidCorrelationID(tc.id, tc.maxLen); got != tc.want {
				t.Errorf("ValidCorrelationID(%q, %d) = %v, want %v", tc.id, tc.maxLen, got, tc.want)
			}
		})
	}
}

func TestNewCorrelation(t *testing.T) {
	c := NewCorrelation("", 0)
	if c.Header != "X-Correlation-Id" || c.MaxLen != 128 || c.HeaderName() != "X-Correlation-Id" {
		t.Errorf("defaults = %+v", c)
	}
	c = NewCorrelation("x-trace-REF", -5)
	if c.Header != "X-Trace-Ref" || c.MaxLen != 128 {
		t.Errorf("NewCorrelation(x-trace-REF) = %+v, want canonical header and default length", c)
	}
	if got := (Correlation{}).HeaderName(); got != DefaultCorrelationHeader {
		t.Errorf("zero value HeaderName = %q", got)
	}
}

func TestCorrelationLookup(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name  string
		corr  Correlation
		lines []string
		id    string
		res   CorrelationResult
	}{
		{"absent", Correlation{}, nil, "", CorrelationAbsent},
		{"configured header honoured", NewCorrelation("", 0), []string{"X-Correlation-ID: abc-1"}, "abc-1", CorrelationValid},
		{"header name in any case", NewCorrelation("", 0), []string{"x-correlation-id: abc-1"}, "abc-1", CorrelationValid},
		{"zero value reads the default header", Correlation{}, []string{"X-Correlation-Id: abc-1"}, "abc-1", CorrelationValid},
		{"non-canonical literal header still matches", Correlation{Header: "x-correlation-id"}, []string{"X-Correlation-Id: abc-1"}, "abc-1", CorrelationValid},
		{"falls back to X-Request-ID", NewCorrelation("", 0), []string{"X-Request-ID: req-7"}, "req-7", CorrelationValid},
		{"configured header wins over X-Request-ID", NewCorrelation("", 0), []string{"X-Request-ID: req-7", "X-Correlation-ID: abc-1"}, "abc-1", CorrelationValid},
		{"invalid configured header is not swapped for X-Request-ID", NewCorrelation("", 0), []string{"X-Correlation-ID: a b", "X-Request-ID: req-7"}, "", CorrelationInvalid},
		{"invalid X-Request-ID", NewCorrelation("", 0), []string{"X-Request-ID: <script>"}, "", CorrelationInvalid},
		{"oversized ID is replaced", NewCorrelation("", 0), []string{"X-Correlation-ID: " + long}, "", CorrelationInvalid},
		{"empty value is replaced", NewCorrelation("", 0), []string{"X-Correlation-ID: "}, "", CorrelationInvalid},
		{"repeated configured header", NewCorrelation("", 0), []string{"X-Correlation-ID: a", "X-Correlation-ID: b"}, "", CorrelationRepeated},
		{"repeated identical header", NewCorrelation("", 0), []string{"X-Correlation-ID: a", "X-Correlation-ID: a"}, "", CorrelationRepeated},
		{"repeated X-Request-ID", NewCorrelation("", 0), []string{"X-Request-ID: a", "X-Request-ID: b"}, "", CorrelationRepeated},
		{"custom header honoured", NewCorrelation("x-trace-ref", 8), []string{"X-Trace-Ref: abcdefgh"}, "abcdefgh", CorrelationValid},
		{"custom header over its MaxLen", NewCorrelation("x-trace-ref", 8), []string{"X-Trace-Ref: abcdefghi"}, "", CorrelationInvalid},
		{"custom header does not read X-Correlation-ID", NewCorrelation("x-trace-ref", 8), []string{"X-Correlation-ID: abc"}, "", CorrelationAbsent},
		{"configured as X-Request-ID", NewCorrelation("x-request-id", 0), []string{"X-Request-Id: req-7"}, "req-7", CorrelationValid},
		{"configured as X-Request-ID, repeated", NewCorrelation("x-request-id", 0), []string{"X-Request-Id: a", "X-Request-Id: b"}, "", CorrelationRepeated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			carrier := otelprop.HeaderCarrier(readHeader(t, tc.lines...))
			id, res := tc.corr.Lookup(carrier)
			if id != tc.id || res != tc.res {
				t.Errorf("Lookup = %q, %s; want %q, %s", id, res, tc.id, tc.res)
			}
			id, ok := tc.corr.Extract(carrier)
			if id != tc.id || ok != (tc.res == CorrelationValid) {
				t.Errorf("Extract = %q, %v", id, ok)
			}
		})
	}
}

func TestCorrelationOtherCarriers(t *testing.T) {
	c := NewCorrelation("", 0)
	if id, ok := c.Extract(otelprop.MapCarrier{"x-correlation-id": " abc\t"}); !ok || id != "abc" {
		t.Errorf("MapCarrier: %q, %v; want abc with OWS trimmed", id, ok)
	}
	if id, ok := (Correlation{}).Extract(otelprop.MapCarrier{"x-request-id": "r1"}); !ok || id != "r1" {
		t.Errorf("MapCarrier fallback: %q, %v", id, ok)
	}
	if _, res := c.Lookup(metadataCarrier{"x-correlation-id": {"a", "b"}}); res != CorrelationRepeated {
		t.Errorf("ValuesGetter with two values: %s, want repeated", res)
	}
}

func TestCorrelationResultString(t *testing.T) {
	for res, want := range map[CorrelationResult]string{
		CorrelationAbsent: "absent", CorrelationValid: "valid", CorrelationInvalid: "invalid",
		CorrelationRepeated: "repeated", CorrelationResult(42): "unknown",
	} {
		if got := res.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(res), got, want)
		}
	}
}

func TestMintCorrelationID(t *testing.T) {
	tid, err := trace.TraceIDFromHex(specTraceID)
	if err != nil {
		t.Fatal(err)
	}
	if got := MintCorrelationID(tid); got != specTraceID {
		t.Errorf("from trace ID = %q, want %q", got, specTraceID)
	}
	a, b := MintCorrelationID(trace.TraceID{}), MintCorrelationID(trace.TraceID{})
	for _, id := range []string{a, b} {
		if len(id) != 32 || strings.Trim(id, hexDigits) != "" || id == strings.Repeat("0", 32) {
			t.Errorf("random ID %q is not 32 lowercase hex digits", id)
		}
		if !ValidCorrelationID(id, 0) {
			t.Errorf("minted ID %q fails ValidCorrelationID", id)
		}
	}
	if a == b {
		t.Errorf("two random IDs are equal: %q", a)
	}
}

func TestCorrelationIDContext(t *testing.T) {
	if got := CorrelationIDFromContext(context.Background()); got != "" {
		t.Errorf("empty context gave %q", got)
	}
	ctx := ContextWithCorrelationID(context.Background(), "abc-1")
	if got := CorrelationIDFromContext(ctx); got != "abc-1" {
		t.Errorf("got %q, want abc-1", got)
	}
}
