package propagation

import (
	"context"
	"net/http"
	"testing"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var (
	benchTraceparent = tp("00", specTraceID, specSpanID, "01")
	benchTracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	sinkCtx          context.Context
	sinkString       string
	sinkBytes        []byte
	sinkBool         bool
)

func benchHeaders(withState bool) http.Header {
	h := http.Header{
		"Traceparent": {benchTraceparent},
		"User-Agent":  {"bench"},
		"Accept":      {"*/*"},
	}
	if withState {
		h["Tracestate"] = []string{benchTracestate}
	}
	return h
}

func BenchmarkExtract(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name      string
		withState bool
		prop      otelprop.TextMapPropagator
	}{
		{"traceparent", false, TraceContext{}},
		{"traceparent+tracestate", true, TraceContext{}},
		{"otel-stock/traceparent", false, otelprop.TraceContext{}},
		{"otel-stock/traceparent+tracestate", true, otelprop.TraceContext{}},
	} {
		c := otelprop.HeaderCarrier(benchHeaders(bc.withState))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkCtx = bc.prop.Extract(ctx, c)
			}
		})
	}
	b.Run("invalid-traceparent", func(b *testing.B) {
		c := otelprop.HeaderCarrier(http.Header{"Traceparent": {benchTraceparent[:54]}})
		b.ReportAllocs()
		for b.Loop() {
			sinkCtx = TraceContext{}.Extract(ctx, c)
		}
	})
}

func BenchmarkInject(b *testing.B) {
	ts, err := ParseTracestate([]string{benchTracestate})
	if err != nil {
		b.Fatal(err)
	}
	sc := mustSpanContext(b, specTraceID, specSpanID, trace.FlagsSampled)
	for _, bc := range []struct {
		name string
		sc   trace.SpanContext
		prop otelprop.TextMapPropagator
	}{
		{"traceparent", sc, TraceContext{}},
		{"traceparent+tracestate", sc.WithTraceState(ts), TraceContext{}},
		{"otel-stock/traceparent", sc, otelprop.TraceContext{}},
		{"otel-stock/traceparent+tracestate", sc.WithTraceState(ts), otelprop.TraceContext{}},
	} {
		ctx := trace.ContextWithSpanContext(context.Background(), bc.sc)
		h := http.Header{}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.prop.Inject(ctx, otelprop.HeaderCarrier(h))
			}
		})
	}
}

func BenchmarkParseTraceparent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sc, _ := ParseTraceparent(benchTraceparent)
		sinkBool = sc.IsValid()
	}
}

func BenchmarkAppendTraceparent(b *testing.B) {
	sc := mustSpanContext(b, specTraceID, specSpanID, trace.FlagsSampled)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes = AppendTraceparent(buf[:0], sc)
	}
}

func BenchmarkAppendTraceresponse(b *testing.B) {
	sc := mustSpanContext(b, specTraceID, specSpanID, trace.FlagsSampled)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		sinkBytes = AppendTraceresponse(buf[:0], sc)
	}
}

func BenchmarkMintCorrelationID(b *testing.B) {
	tid := mustSpanContext(b, specTraceID, specSpanID, 0).TraceID()
	b.Run("from-trace-id", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkString = MintCorrelationID(tid)
		}
	})
	b.Run("random", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkString = MintCorrelationID(trace.TraceID{})
		}
	})
}

func BenchmarkCorrelationExtract(b *testing.B) {
	corr := NewCorrelation("", 0)
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"configured-header", http.Header{"X-Correlation-Id": {"f47ac10b-58cc-4372-a567-0e02b2c3d479"}}},
		{"x-request-id-fallback", http.Header{"X-Request-Id": {"f47ac10b-58cc-4372-a567-0e02b2c3d479"}}},
		{"absent", http.Header{"Accept": {"*/*"}}},
	} {
		c := otelprop.HeaderCarrier(bc.h)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkString, sinkBool = corr.Extract(c)
			}
		})
	}
}

// TestAllocations guards the allocation counts of the per-request paths at
// the level measured with the benchmarks above.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	sc := mustSpanContext(t, specTraceID, specSpanID, trace.FlagsSampled)
	ts, err := ParseTracestate([]string{benchTracestate})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, 0, 64)
	tid := sc.TraceID()
	corr := NewCorrelation("", 0)
	tpOnly := otelprop.HeaderCarrier(benchHeaders(false))
	withState := otelprop.HeaderCarrier(benchHeaders(true))
	invalid := otelprop.HeaderCarrier(http.Header{"Traceparent": {benchTraceparent[:54]}})
	corrHeader := otelprop.HeaderCarrier(http.Header{"X-Request-Id": {"f47ac10b-58cc-4372-a567-0e02b2c3d479"}})
	injectCtx := trace.ContextWithSpanContext(ctx, sc)
	injectStateCtx := trace.ContextWithSpanContext(ctx, sc.WithTraceState(ts))
	out := otelprop.HeaderCarrier(http.Header{})

	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		// context.WithValue plus the boxed SpanContext.
		{"Extract traceparent", 2, func() { sinkCtx = TraceContext{}.Extract(ctx, tpOnly) }},
		// plus trace.ParseTraceState growing its member slice once per
		// member (two here); it is the only way to build a trace.TraceState.
		{"Extract traceparent+tracestate", 4, func() { sinkCtx = TraceContext{}.Extract(ctx, withState) }},
		{"Extract invalid traceparent", 0, func() { sinkCtx = TraceContext{}.Extract(ctx, invalid) }},
		{"ParseTraceparent", 0, func() { _, err = ParseTraceparent(benchTraceparent) }},
		// the value string and http.Header's []string.
		{"Inject traceparent", 2, func() { TraceContext{}.Inject(injectCtx, out) }},
		// plus TraceState.String and its []string.
		{"Inject traceparent+tracestate", 4, func() { TraceContext{}.Inject(injectStateCtx, out) }},
		{"AppendTraceparent into room", 0, func() { sinkBytes = AppendTraceparent(buf[:0], sc) }},
		{"AppendTraceresponse into room", 0, func() { sinkBytes = AppendTraceresponse(buf[:0], sc) }},
		{"MintCorrelationID from trace ID", 1, func() { sinkString = MintCorrelationID(tid) }},
		{"MintCorrelationID random", 1, func() { sinkString = MintCorrelationID(trace.TraceID{}) }},
		{"Correlation.Extract", 0, func() { sinkString, sinkBool = corr.Extract(corrHeader) }},
	} {
		if got := testing.AllocsPerRun(200, tc.fn); got > tc.max {
			t.Errorf("%s: %.1f allocations per run, want at most %.0f", tc.name, got, tc.max)
		}
	}
}
