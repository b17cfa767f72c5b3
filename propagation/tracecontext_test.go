package propagation

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// metadataCarrier is a multi-valued carrier with lower-case keys, shaped like
// gRPC metadata: it implements otelprop.ValuesGetter but is not an
// http.Header.
type metadataCarrier map[string][]string

func (m metadataCarrier) Get(k string) string {
	if v := m[strings.ToLower(k)]; len(v) > 0 {
		return v[0]
	}
	return ""
}
func (m metadataCarrier) Set(k, v string)          { m[strings.ToLower(k)] = []string{v} }
func (m metadataCarrier) Values(k string) []string { return m[strings.ToLower(k)] }
func (m metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// readHeader parses raw request header lines with net/http, the way the
// sidecar receives them, so that repeated fields and name casing behave as on
// the wire.
func readHeader(t *testing.T, lines ...string) http.Header {
	t.Helper()
	raw := "GET / HTTP/1.1\r\nHost: app\r\n" + strings.Join(lines, "\r\n")
	if len(lines) > 0 {
		raw += "\r\n"
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatalf("ReadRequest: %v", err)
	}
	return req.Header
}

func TestTraceContextExtract(t *testing.T) {
	valid := tp("00", suiteTraceID, suiteSpanID, "01")
	cases := []struct {
		name      string
		lines     []string
		wantValid bool
		wantState string
	}{
		{"4.2 no traceparent received", nil, false, ""},
		{"3.2 traceparent without tracestate", []string{"traceparent: " + valid}, true, ""},
		{"3.2.1 header name in mixed case", []string{"TrAcEpArEnT: " + valid, "TRACESTATE: foo=1"}, true, "foo=1"},
		{"3.2.1 a different name is not traceparent", []string{"trace-parent: " + valid}, false, ""},
		{"duplicated traceparent starts a new trace", []string{"traceparent: " + tp("00", suiteTraceID[:31]+"1", suiteSpanID, "01"), "traceparent: " + valid}, false, ""},
		{"duplicated identical traceparent starts a new trace", []string{"traceparent: " + valid, "traceparent: " + valid}, false, ""},
		{"traceparent combined with a comma starts a new trace", []string{"traceparent: " + valid + ", " + valid}, false, ""},
		{"4.2 tracestate without traceparent MUST be discarded", []string{"tracestate: foo=1"}, false, ""},
		{"3.3 tracestate is not parsed after an invalid traceparent", []string{"traceparent: " + tp("00", strings.Repeat("0", 32), suiteSpanID, "01"), "tracestate: foo=1"}, false, ""},
		{"3.3.1.1 multiple tracestate fields are combined", []string{"traceparent: " + valid, "tracestate: foo=1,bar=2", "tracestate: rojo=1,congo=2", "tracestate: baz=3"}, true, "foo=1,bar=2,rojo=1,congo=2,baz=3"},
		{"3.3.1.1 empty tracestate field before a member", []string{"traceparent: " + valid, "tracestate: ", "tracestate: foo=1"}, true, "foo=1"},
		{"3.3 invalid tracestate MUST NOT affect traceparent", []string{"traceparent: " + valid, "tracestate: foo=1,foo=2"}, true, ""},
		{"3.3.1.1 33 members discard the tracestate, not the traceparent", []string{"traceparent: " + valid, "tracestate: " + members(1, 33)}, true, ""},
		{"3.2.4 higher version is continued", []string{"traceparent: " + tp("cc", suiteTraceID, suiteSpanID, "01") + "-future", "tracestate: foo=1"}, true, "foo=1"},
		{"baggage is not read", []string{"baggage: k=v"}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := context.WithValue(context.Background(), correlationKey{}, "marker")
			ctx := TraceContext{}.Extract(parent, otelprop.HeaderCarrier(readHeader(t, tc.lines...)))
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != tc.wantValid {
				t.Fatalf("valid = %v, want %v (span context %v)", sc.IsValid(), tc.wantValid, sc)
			}
			if !tc.wantValid {
				if ctx != parent {
					t.Error("ctx was replaced although nothing valid was extracted")
				}
				return
			}
			if sc.TraceID().String() != suiteTraceID || sc.SpanID().String() != suiteSpanID {
				t.Errorf("IDs = %s/%s, want %s/%s", sc.TraceID(), sc.SpanID(), suiteTraceID, suiteSpanID)
			}
			if !sc.IsRemote() || !sc.IsSampled() {
				t.Errorf("remote = %v, sampled = %v, want both", sc.IsRemote(), sc.IsSampled())
			}
			if got := sc.TraceState().String(); got != tc.wantState {
				t.Errorf("tracestate = %q, want %q", got, tc.wantState)
			}
			if CorrelationIDFromContext(ctx) != "marker" {
				t.Error("Extract lost the values of the parent context")
			}
		})
	}
}

func TestTraceContextExtractOtherCarriers(t *testing.T) {
	valid := tp("00", suiteTraceID, suiteSpanID, "00")
	t.Run("MapCarrier with lower-case keys", func(t *testing.T) {
		c := otelprop.MapCarrier{"traceparent": " " + valid, "tracestate": "a=1, ,b=2"}
		sc := trace.SpanContextFromContext(TraceContext{}.Extract(context.Background(), c))
		if sc.TraceID().String() != suiteTraceID || sc.IsSampled() || sc.TraceState().String() != "a=1,b=2" {
			t.Errorf("got %v tracestate %q", sc, sc.TraceState().String())
		}
	})
	t.Run("ValuesGetter with two traceparent values", func(t *testing.T) {
		c := metadataCarrier{"traceparent": {valid, valid}}
		if sc := trace.SpanContextFromContext(TraceContext{}.Extract(context.Background(), c)); sc.IsValid() {
			t.Errorf("duplicate traceparent extracted as %v", sc)
		}
	})
	t.Run("ValuesGetter combines tracestate values", func(t *testing.T) {
		c := metadataCarrier{"traceparent": {valid}, "tracestate": {"a=1", "b=2"}}
		sc := trace.SpanContextFromContext(TraceContext{}.Extract(context.Background(), c))
		if got := sc.TraceState().String(); got != "a=1,b=2" {
			t.Errorf("tracestate = %q, want %q", got, "a=1,b=2")
		}
	})
}

func TestTraceContextInject(t *testing.T) {
	ts, err := ParseTracestate([]string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"})
	if err != nil {
		t.Fatal(err)
	}
	sc := mustSpanContext(t, specTraceID, specSpanID, trace.FlagsSampled|trace.FlagsRandom|0x80).WithTraceState(ts)
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	wantTP := tp("00", specTraceID, specSpanID, "01")

	t.Run("HeaderCarrier replaces stale and duplicate fields", func(t *testing.T) {
		h := http.Header{
			"Traceparent": {"stale-1", "stale-2"},
			"Tracestate":  {"old=1", "old=2"},
			"Baggage":     {"k=v"},
		}
		TraceContext{}.Inject(ctx, otelprop.HeaderCarrier(h))
		if got := h["Traceparent"]; !slices.Equal(got, []string{wantTP}) {
			t.Errorf("Traceparent = %q, want [%q]", got, wantTP)
		}
		if got := h["Tracestate"]; !slices.Equal(got, []string{ts.String()}) {
			t.Errorf("Tracestate = %q, want [%q]", got, ts.String())
		}
		if got := h["Baggage"]; !slices.Equal(got, []string{"k=v"}) {
			t.Errorf("Baggage = %q, want it untouched", got)
		}
	})
	t.Run("3.3.1.1 empty tracestate is not sent and a stale one is removed", func(t *testing.T) {
		h := http.Header{"Tracestate": {"old=1"}}
		TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(trace.TraceState{})), otelprop.HeaderCarrier(h))
		if _, ok := h["Tracestate"]; ok {
			t.Errorf("Tracestate = %q, want no field", h["Tracestate"])
		}
		if got := h.Get("traceparent"); got != wantTP {
			t.Errorf("traceparent = %q, want %q", got, wantTP)
		}
	})
	t.Run("4.3 no valid context removes inbound fields", func(t *testing.T) {
		h := http.Header{"Traceparent": {wantTP}, "Tracestate": {"old=1"}, "Baggage": {"k=v"}}
		TraceContext{}.Inject(context.Background(), otelprop.HeaderCarrier(h))
		if len(h) != 1 || h.Get("Baggage") != "k=v" {
			t.Errorf("header = %v, want only the untouched baggage", h)
		}
	})
	t.Run("3.2.1 other carriers get lower-case names", func(t *testing.T) {
		c := otelprop.MapCarrier{"tracestate": "stale=1"}
		TraceContext{}.Inject(ctx, c)
		if c["traceparent"] != wantTP || c["tracestate"] != ts.String() || len(c) != 2 {
			t.Errorf("carrier = %v", c)
		}
		TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(trace.TraceState{})), c)
		if c["tracestate"] != "" {
			t.Errorf("stale tracestate %q kept", c["tracestate"])
		}
	})
	t.Run("Fields", func(t *testing.T) {
		if got := (TraceContext{}).Fields(); !slices.Equal(got, []string{"traceparent", "tracestate"}) {
			t.Errorf("Fields = %q", got)
		}
	})
}

// TestTraceContextRoundTrip sends injected context over a real loopback HTTP
// connection and extracts it on the other side.
func TestTraceContextRoundTrip(t *testing.T) {
	type seen struct{ sc trace.SpanContext }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := TraceContext{}.Extract(r.Context(), otelprop.HeaderCarrier(r.Header))
		sc := trace.SpanContextFromContext(ctx)
		w.Header().Set(FieldTraceresponse, string(AppendTraceresponse(nil, sc)))
		got <- seen{sc: sc}
	}))
	defer srv.Close()

	ts, err := ParseTracestate([]string{"congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		sent := mustSpanContext(t, specTraceID, specSpanID, flags).WithTraceState(ts)
		req, err := http.NewRequestWithContext(trace.ContextWithSpanContext(context.Background(), sent), http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		TraceContext{}.Inject(req.Context(), otelprop.HeaderCarrier(req.Header))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Fatal(err)
		}
		s := <-got
		if !s.sc.IsRemote() || s.sc.TraceID() != sent.TraceID() || s.sc.SpanID() != sent.SpanID() ||
			s.sc.TraceFlags() != sent.TraceFlags() || s.sc.TraceState().String() != ts.String() {
			t.Errorf("flags %s: received %v (tracestate %q), sent %v (tracestate %q)",
				flags, s.sc, s.sc.TraceState().String(), sent, ts.String())
		}
		if want := string(AppendTraceparent(nil, sent)); resp.Header.Get("Traceresponse") != want {
			t.Errorf("traceresponse = %q, want %q", resp.Header.Get("Traceresponse"), want)
		}
	}
}
