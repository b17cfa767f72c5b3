package propagation

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// FuzzParseTraceparent checks that ParseTraceparent never panics, that an
// accepted value re-formats to an equivalent version 00 value, and that it
// agrees with the stock OTel propagator except where this package is
// deliberately different (OWS, commas, unknown flags; see doc.go).
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		tp("00", specTraceID, specSpanID, "01"),
		tp("00", specTraceID, specSpanID, "00"),
		tp("00", specTraceID, specSpanID, "09"),
		tp("cc", suiteTraceID, suiteSpanID, "01"),
		tp("cc", suiteTraceID, suiteSpanID, "01") + "-what-the-future-will-be-like",
		tp("cc", suiteTraceID, suiteSpanID, "01") + ".what",
		tp("ff", suiteTraceID, suiteSpanID, "01"),
		tp("00", strings.Repeat("0", 32), suiteSpanID, "01"),
		tp("00", suiteTraceID, strings.Repeat("0", 16), "01"),
		tp("00", strings.ToUpper(specTraceID), specSpanID, "01"),
		tp("00", suiteTraceID, suiteSpanID, "01") + "," + tp("00", suiteTraceID, suiteSpanID, "01"),
		"\t " + tp("00", suiteTraceID, suiteSpanID, "01") + " ",
		"", "00", "00-", "-", "0-1-2-3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseTraceparent(s)
		stock := trace.SpanContextFromContext(otelprop.TraceContext{}.Extract(context.Background(), otelprop.MapCarrier{"traceparent": s}))
		if err != nil {
			if !errors.Is(err, ErrInvalidTraceparent) || sc.IsValid() {
				t.Fatalf("ParseTraceparent(%q) = %v, %v", s, sc, err)
			}
			if stock.IsValid() && !strings.Contains(s, ",") {
				t.Fatalf("stock propagator accepts %q, this package says %v", s, err)
			}
			return
		}
		if !sc.IsValid() || !sc.IsRemote() || sc.TraceFlags()&^trace.FlagsSampled != 0 {
			t.Fatalf("ParseTraceparent(%q) accepted %v with flags %s", s, sc, sc.TraceFlags())
		}
		out := string(AppendTraceparent(nil, sc))
		trimmed := trimOWS(s)
		if len(out) != traceparentLen || out[:3] != "00-" || out[3:52] != trimmed[3:52] {
			t.Fatalf("re-formatted %q as %q", s, out)
		}
		back, err := ParseTraceparent(out)
		if err != nil || !back.Equal(sc) {
			t.Fatalf("re-formatted %q does not parse back to %v: %v, %v", out, sc, back, err)
		}
		version, flags := trimmed[:2], hexRev[trimmed[53]]<<4|hexRev[trimmed[54]]
		deliberate := trimmed != s || (version == "00" && flags > 3)
		if !deliberate && (stock.TraceID() != sc.TraceID() || stock.SpanID() != sc.SpanID()) {
			t.Fatalf("stock propagator extracts %v from %q, this package %v", stock, s, sc)
		}
	})
}

// FuzzParseTracestate checks that ParseTracestate never panics, that passing
// two fields equals passing them joined with "," (RFC 7230 §3.2.2), that an
// accepted result is canonical and re-parses to itself (here and with
// trace.ParseTraceState), and that it agrees with trace.ParseTraceState
// except on whitespace-only list-members.
func FuzzParseTracestate(f *testing.F) {
	for _, s := range [][2]string{
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", ""},
		{"foo=1,bar=2", "rojo=1,congo=2"},
		{"foo=1, ,bar=2", " \t"},
		{"foo=1 \t , \t bar=2", "baz=3\t"},
		{members(1, 31), "bar32=32"},
		{members(1, 32), "bar33=33"},
		{"foo=1", "foo=2"},
		{strings.Repeat("t", 241) + "@" + strings.Repeat("v", 14) + "=1", strings.Repeat("z", 257) + "=1"},
		{"foo@@bar=1", "@foo=1"},
		{"foo=bar=baz", "foo="},
		{"foo=" + allValueChars, allKeyChars + "@a-z0-9_-*/=1"},
		{",,,", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ts, err := ParseTracestate([]string{a, b})
		joined, jerr := ParseTracestate([]string{a + "," + b})
		if (err == nil) != (jerr == nil) || ts.String() != joined.String() {
			t.Fatalf("fields %q, %q give %q, %v; joined give %q, %v", a, b, ts.String(), err, joined.String(), jerr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidTracestate) || ts.Len() != 0 {
				t.Fatalf("ParseTracestate(%q, %q) = %q, %v", a, b, ts.String(), err)
			}
		} else {
			checkCanonicalTracestate(t, ts)
		}

		single, err := ParseTracestate([]string{a})
		stock, stockErr := trace.ParseTraceState(a)
		switch {
		case stockErr == nil && (err != nil || single.String() != stock.String()):
			t.Fatalf("stock parses %q as %q, this package %q, %v", a, stock.String(), single.String(), err)
		case err == nil && stockErr != nil && !hasBlankMember(a):
			t.Fatalf("this package parses %q as %q, stock says %v", a, single.String(), stockErr)
		}
	})
}

func checkCanonicalTracestate(t *testing.T, ts trace.TraceState) {
	t.Helper()
	s := ts.String()
	if ts.Len() > maxMembers {
		t.Fatalf("%d list-members in %q", ts.Len(), s)
	}
	ts.Walk(func(k, v string) bool {
		if !validKey(k) || !validValue(v) {
			t.Fatalf("member %q=%q of %q breaks the grammar", k, v, s)
		}
		return true
	})
	again, err := ParseTracestate([]string{s})
	if err != nil || again.String() != s {
		t.Fatalf("%q re-parses as %q, %v", s, again.String(), err)
	}
	if stock, err := trace.ParseTraceState(s); err != nil || stock.String() != s {
		t.Fatalf("trace.ParseTraceState(%q) = %q, %v", s, stock.String(), err)
	}
}

// hasBlankMember reports whether s has a list-member made only of OWS, which
// trace.ParseTraceState rejects and §3.3.1.1 allows.
func hasBlankMember(s string) bool {
	for m := range strings.SplitSeq(s, ",") {
		if m != "" && trimOWS(m) == "" {
			return true
		}
	}
	return false
}

// FuzzCorrelationExtract checks that an accepted correlation ID is exactly
// the trimmed header value, passes ValidCorrelationID, and holds only bytes
// that are safe in a header, a log line and a CSV cell; and that a repeated
// header is never accepted.
func FuzzCorrelationExtract(f *testing.F) {
	for _, s := range []string{
		"f47ac10b-58cc-4372-a567-0e02b2c3d479", "01ARZ3NDEKTSV4RRFFQ69G5FAV", " abc\t",
		"", "a b", "abc\r\nX-Admin: 1", "abc,def", "=cmd", "-1", strings.Repeat("a", 129),
		"tenant:order.42@eu~1", "Zm9v+YmFy/YQ==", "caf\u00e9",
	} {
		f.Add(s)
	}
	corr := NewCorrelation("", 0)
	f.Fuzz(func(t *testing.T, s string) {
		valid := ValidCorrelationID(s, 0)
		if valid {
			if len(s) > DefaultCorrelationMaxLen {
				t.Fatalf("%d bytes accepted", len(s))
			}
			if c := s[0]; c == '=' || c == '+' || c == '-' || c == '@' {
				t.Fatalf("%q starts with a spreadsheet formula character", s)
			}
			if i := strings.IndexFunc(s, func(r rune) bool {
				return r <= ' ' || r >= 0x7f || strings.ContainsRune(`,;"'\%<>`, r)
			}); i >= 0 {
				t.Fatalf("%q accepted with unsafe byte at %d", s, i)
			}
		}

		h := http.Header{"X-Correlation-Id": {s}}
		id, ok := corr.Extract(otelprop.HeaderCarrier(h))
		want := trimOWS(s)
		if ok != ValidCorrelationID(want, 0) || (ok && id != want) || (!ok && id != "") {
			t.Fatalf("Extract of %q = %q, %v", s, id, ok)
		}
		h["X-Correlation-Id"] = []string{s, s}
		if id, ok := corr.Extract(otelprop.HeaderCarrier(h)); ok || id != "" {
			t.Fatalf("repeated header %q accepted as %q", s, id)
		}
	})
}
