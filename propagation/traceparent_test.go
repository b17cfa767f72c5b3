package propagation

import (
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const (
	specTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	specSpanID  = "00f067aa0ba902b7"
	// The W3C conformance suite's identifiers.
	suiteTraceID = "12345678901234567890123456789012"
	suiteSpanID  = "1234567890123456"
)

func tp(version, tid, sid, flags string) string {
	return version + "-" + tid + "-" + sid + "-" + flags
}

func TestParseTraceparentValid(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		tid     string
		sid     string
		sampled bool
	}{
		{"3.2.3 example sampled", tp("00", specTraceID, specSpanID, "01"), specTraceID, specSpanID, true},
		{"3.2.3 example not sampled", tp("00", specTraceID, specSpanID, "00"), specTraceID, specSpanID, false},
		{"3.2.2.5 sampled is the least significant bit (09 = sampled + unknown)", tp("00", suiteTraceID, suiteSpanID, "09"), suiteTraceID, suiteSpanID, true},
		{"3.2.2.5.2 unknown flag alone is ignored, not invalid", tp("00", suiteTraceID, suiteSpanID, "08"), suiteTraceID, suiteSpanID, false},
		{"3.2.2.5.2 all flags set keeps only sampled", tp("00", suiteTraceID, suiteSpanID, "ff"), suiteTraceID, suiteSpanID, true},
		{"3.2.2.5.1 Level 2 random flag is not a Level 1 flag", tp("00", suiteTraceID, suiteSpanID, "02"), suiteTraceID, suiteSpanID, false},
		{"3.2.4 higher version of exactly 55 characters", tp("cc", suiteTraceID, suiteSpanID, "01"), suiteTraceID, suiteSpanID, true},
		{"3.2.4 higher version followed by dash and unknown fields", tp("cc", suiteTraceID, suiteSpanID, "01") + "-what-the-future-will-be-like", suiteTraceID, suiteSpanID, true},
		{"3.2.4 higher version ends with a bare dash", tp("cc", suiteTraceID, suiteSpanID, "00") + "-", suiteTraceID, suiteSpanID, false},
		{"3.2.4 higher version only the sampled bit is parsed", tp("01", suiteTraceID, suiteSpanID, "fe") + "-x", suiteTraceID, suiteSpanID, false},
		{"3.2.2.1 fe is the highest valid version", tp("fe", suiteTraceID, suiteSpanID, "01"), suiteTraceID, suiteSpanID, true},
		{"RFC 7230 leading space is OWS", " " + tp("00", suiteTraceID, suiteSpanID, "01"), suiteTraceID, suiteSpanID, true},
		{"RFC 7230 leading tab is OWS", "\t" + tp("00", suiteTraceID, suiteSpanID, "01"), suiteTraceID, suiteSpanID, true},
		{"RFC 7230 trailing space is OWS", tp("00", suiteTraceID, suiteSpanID, "01") + " ", suiteTraceID, suiteSpanID, true},
		{"RFC 7230 trailing tab is OWS", tp("00", suiteTraceID, suiteSpanID, "01") + "\t", suiteTraceID, suiteSpanID, true},
		{"RFC 7230 OWS on both sides", "\t " + tp("00", suiteTraceID, suiteSpanID, "01") + " \t", suiteTraceID, suiteSpanID, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseTraceparent(tc.in)
			if err != nil {
				t.Fatalf("ParseTraceparent(%q) error: %v", tc.in, err)
			}
			if got := sc.TraceID().String(); got != tc.tid {
				t.Errorf("trace-id = %s, want %s", got, tc.tid)
			}
			if got := sc.SpanID().String(); got != tc.sid {
				t.Errorf("parent-id = %s, want %s", got, tc.sid)
			}
			if sc.IsSampled() != tc.sampled {
				t.Errorf("sampled = %v, want %v", sc.IsSampled(), tc.sampled)
			}
			if sc.TraceFlags()&^trace.FlagsSampled != 0 {
				t.Errorf("flags = %s, only the sampled bit may be kept", sc.TraceFlags())
			}
			if !sc.IsRemote() {
				t.Error("span context is not marked remote")
			}
			if sc.TraceState().Len() != 0 {
				t.Errorf("tracestate = %q, want empty", sc.TraceState().String())
			}
		})
	}
}

func TestParseTraceparentInvalid(t *testing.T) {
	valid := tp("00", suiteTraceID, suiteSpanID, "01")
	cases := []struct {
		name string
		in   string
		why  reason
	}{
		{"empty value", "", rsnVersion},
		{"only whitespace", " \t ", rsnVersion},
		{"3.2.2.1 version ff is forbidden", tp("ff", suiteTraceID, suiteSpanID, "01"), rsnVersionFF},
		{"3.2.2.1 version is lowercase hex (upper case)", tp("0A", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.2.1 version illegal first character", tp(".0", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.2.1 version illegal second character", tp("0.", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.4 version of 3 digits is not followed by a dash", tp("000", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.4 version of 4 digits is not followed by a dash", tp("0000", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.4 version of 1 digit", tp("0", suiteTraceID, suiteSpanID, "01"), rsnVersion},
		{"3.2.4 version followed by another delimiter", "00_" + valid[3:], rsnVersion},
		{"3.2.2.2 version 00 has nothing after the flags", valid + ".", rsnV00Length},
		{"3.2.2.2 version 00 has no further fields", valid + "-what-the-future-will-be-like", rsnV00Length},
		{"3.2.4 higher version with a non-dash after the flags", tp("cc", suiteTraceID, suiteSpanID, "01") + ".what-the-future-will-be-like", rsnFutureSuffix},
		{"3.2.4 higher version shorter than 55 characters", tp("cc", suiteTraceID, suiteSpanID, "1"), rsnTooShort},
		{"3.2.4 version 00 shorter than 55 characters", valid[:54], rsnTooShort},
		{"3.2.2.3 trace-id all zeros", tp("00", strings.Repeat("0", 32), suiteSpanID, "01"), rsnTraceIDZero},
		{"3.2.2.3 trace-id upper case hex", tp("00", strings.ToUpper(specTraceID), suiteSpanID, "01"), rsnTraceIDHex},
		{"3.2.2.3 trace-id illegal first character", tp("00", "."+suiteTraceID[1:], suiteSpanID, "01"), rsnTraceIDHex},
		{"3.2.2.3 trace-id illegal last character", tp("00", suiteTraceID[:31]+".", suiteSpanID, "01"), rsnTraceIDHex},
		{"3.2.2.3 trace-id of 33 digits", tp("00", suiteTraceID+"3", suiteSpanID, "01"), rsnDelimiter},
		{"3.2.2.3 trace-id of 31 digits", tp("00", suiteTraceID[:31], suiteSpanID, "01"), rsnTooShort},
		{"3.2.4 trace-id of 33 digits in a higher version", tp("cc", suiteTraceID+"3", suiteSpanID, "01"), rsnDelimiter},
		{"3.2.2.4 parent-id all zeros", tp("00", suiteTraceID, strings.Repeat("0", 16), "01"), rsnParentIDZero},
		{"3.2.2.4 parent-id upper case hex", tp("00", suiteTraceID, "00F067AA0BA902B7", "01"), rsnParentIDHex},
		{"3.2.2.4 parent-id illegal first character", tp("00", suiteTraceID, "."+suiteSpanID[1:], "01"), rsnParentIDHex},
		{"3.2.2.4 parent-id illegal last character", tp("00", suiteTraceID, suiteSpanID[:15]+".", "01"), rsnParentIDHex},
		{"3.2.2.4 parent-id of 17 digits", tp("00", suiteTraceID, suiteSpanID+"7", "01"), rsnDelimiter},
		{"3.2.2.4 parent-id of 15 digits", tp("00", suiteTraceID, suiteSpanID[:15], "01"), rsnTooShort},
		{"3.2.2.5 trace-flags illegal first character", tp("00", suiteTraceID, suiteSpanID, ".0"), rsnFlagsHex},
		{"3.2.2.5 trace-flags illegal second character", tp("00", suiteTraceID, suiteSpanID, "0."), rsnFlagsHex},
		{"3.2.2.5 trace-flags upper case hex", tp("00", suiteTraceID, suiteSpanID, "0A"), rsnFlagsHex},
		{"3.2.2.5 trace-flags of 3 digits", tp("00", suiteTraceID, suiteSpanID, "001"), rsnV00Length},
		{"3.2.2.5 trace-flags of 1 digit", tp("00", suiteTraceID, suiteSpanID, "1"), rsnTooShort},
		{"3.2.2 fields are separated by dashes", "00-" + suiteTraceID + "_" + suiteSpanID + "-01", rsnDelimiter},
		{"3.2.2 whitespace inside the value is not OWS", "00 -" + suiteTraceID + "-" + suiteSpanID + "-01", rsnVersion},
		{"RFC 7230 3.2.2 two traceparent fields combined", valid + "," + tp("00", specTraceID, specSpanID, "01"), rsnComma},
		{"RFC 7230 3.2.2 two traceparent fields combined with OWS", valid + ", " + valid, rsnComma},
		{"RFC 7230 3.2.2 comma inside a future version's unknown fields", tp("cc", suiteTraceID, suiteSpanID, "01") + "-a,b", rsnComma},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseTraceparent(tc.in)
			if !errors.Is(err, ErrInvalidTraceparent) {
				t.Fatalf("ParseTraceparent(%q) error = %v, want ErrInvalidTraceparent", tc.in, err)
			}
			if !strings.HasSuffix(err.Error(), string(tc.why)) {
				t.Errorf("error = %q, want the reason %q", err, tc.why)
			}
			if dup := errors.Is(err, ErrDuplicateTraceparent); dup != (tc.why == rsnComma) {
				t.Errorf("errors.Is(err, ErrDuplicateTraceparent) = %v", dup)
			}
			if sc.IsValid() {
				t.Errorf("span context %v returned with an error", sc)
			}
		})
	}
}

func TestAppendTraceparent(t *testing.T) {
	sc := mustSpanContext(t, specTraceID, specSpanID, trace.FlagsSampled)
	cases := []struct {
		name  string
		flags trace.TraceFlags
		want  string
	}{
		{"3.2.3 sampled", trace.FlagsSampled, tp("00", specTraceID, specSpanID, "01")},
		{"3.2.3 not sampled", 0, tp("00", specTraceID, specSpanID, "00")},
		{"3.2.2.5.2 other flags MUST be set to zero", 0xff, tp("00", specTraceID, specSpanID, "01")},
		{"3.2.2.5.2 the Level 2 random flag is not written", trace.FlagsRandom, tp("00", specTraceID, specSpanID, "00")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendTraceparent(nil, sc.WithTraceFlags(tc.flags)))
			if got != tc.want {
				t.Errorf("AppendTraceparent = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("appends to dst", func(t *testing.T) {
		got := string(AppendTraceparent([]byte("traceparent: "), sc))
		if want := "traceparent: " + tp("00", specTraceID, specSpanID, "01"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("invalid span context appends nothing", func(t *testing.T) {
		if got := AppendTraceparent([]byte("x"), trace.SpanContext{}); string(got) != "x" {
			t.Errorf("got %q, want %q", got, "x")
		}
	})
}

func TestAppendTraceresponse(t *testing.T) {
	sc := mustSpanContext(t, specTraceID, specSpanID, 0)
	cases := []struct {
		name  string
		flags trace.TraceFlags
		want  string
	}{
		{"L2 traceresponse version 00 not sampled", 0, tp("00", specTraceID, specSpanID, "00")},
		{"L2 traceresponse sampled flag", trace.FlagsSampled, tp("00", specTraceID, specSpanID, "01")},
		{"L2 traceresponse random-trace-id flag", trace.FlagsRandom, tp("00", specTraceID, specSpanID, "02")},
		{"L2 traceresponse other flags MUST be set to zero", 0xff, tp("00", specTraceID, specSpanID, "03")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendTraceresponse(nil, sc.WithTraceFlags(tc.flags)))
			if got != tc.want {
				t.Errorf("AppendTraceresponse = %q, want %q", got, tc.want)
			}
			// The child-id is the span's own ID and the value parses with
			// the traceparent grammar it shares.
			back, err := ParseTraceparent(got)
			if err != nil {
				t.Fatalf("traceresponse %q does not parse: %v", got, err)
			}
			if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() {
				t.Errorf("parsed back %v, want IDs of %v", back, sc)
			}
		})
	}
	if got := AppendTraceresponse(nil, trace.SpanContext{}); len(got) != 0 {
		t.Errorf("invalid span context gave %q, want nothing", got)
	}
}

func mustSpanContext(t testing.TB, tid, sid string, flags trace.TraceFlags) trace.SpanContext {
	t.Helper()
	traceID, err := trace.TraceIDFromHex(tid)
	if err != nil {
		t.Fatal(err)
	}
	spanID, err := trace.SpanIDFromHex(sid)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: flags})
}
