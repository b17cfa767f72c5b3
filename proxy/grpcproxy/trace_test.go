package grpcproxy

import (
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy/stitch"
)

var (
	inboundTrace = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	inboundSpan  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	inboundSC    = trace.NewSpanContext(trace.SpanContextConfig{TraceID: inboundTrace, SpanID: inboundSpan, TraceFlags: trace.FlagsSampled})
)

const appTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// destTraceparent is the span context the destination received.
func destTraceparent(t *testing.T, a *destApp) trace.SpanContext {
	t.Helper()
	v := a.lastMD().Get("traceparent")
	if len(v) != 1 {
		t.Fatalf("destination saw traceparent %q", v)
	}
	sc, err := propagation.ParseTraceparent(v[0])
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestParentSource checks each way the CLIENT span finds its parent, and
// that the destination's traceparent names the CLIENT span as its parent.
func TestParentSource(t *testing.T) {
	for _, tc := range []struct {
		name       string
		md         []string      // the app's outgoing metadata
		entry      *stitch.Entry // an inbound request in flight
		serial     bool          // SerialInference
		wantSource string
		wantParent trace.SpanContext // the CLIENT span's parent; invalid: a root
		wantCID    string            // x-correlation-id at the destination
	}{
		{name: "propagated", md: []string{"traceparent", appTraceparent},
			wantSource: "propagated", wantParent: inboundSC},
		{name: "propagated, correlation ID from the registry", md: []string{"traceparent", appTraceparent},
			entry: &stitch.Entry{SpanContext: inboundSC, CorrelationID: "req-7"}, wantSource: "propagated", wantParent: inboundSC, wantCID: "req-7"},
		{name: "correlation_id", md: []string{"x-correlation-id", "req-42"},
			entry: &stitch.Entry{SpanContext: inboundSC, CorrelationID: "req-42"}, wantSource: "correlation_id", wantParent: inboundSC, wantCID: "req-42"},
		{name: "inferred", entry: &stitch.Entry{SpanContext: inboundSC, CorrelationID: "req-9"}, serial: true,
			wantSource: "inferred", wantParent: inboundSC, wantCID: "req-9"},
		{name: "unknown correlation ID", md: []string{"x-correlation-id", "req-404"},
			entry: &stitch.Entry{SpanContext: inboundSC, CorrelationID: "req-42"}, wantSource: "none", wantCID: "req-404"},
		{name: "none", wantSource: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, addr := startDest(t, "a")
			r := newRig(t, func(s *Settings) { s.SerialInference = tc.serial })
			if tc.entry != nil {
				end := r.stitch.Begin(*tc.entry)
				defer end()
			}
			ctx := metadata.AppendToOutgoingContext(t.Context(), tc.md...)
			if _, err := r.client(addr).UnaryCall(ctx, unary("x")); err != nil {
				t.Fatal(err)
			}
			s := r.ended(1)[0]
			checkClientSpan(t, s, tc.wantSource, tc.wantParent)
			got := destTraceparent(t, a)
			if got.TraceID() != s.SpanContext().TraceID() || got.SpanID() != s.SpanContext().SpanID() {
				t.Fatalf("destination's parent %s/%s, want the CLIENT span %s/%s",
					got.TraceID(), got.SpanID(), s.SpanContext().TraceID(), s.SpanContext().SpanID())
			}
			var cid []string
			if tc.wantCID != "" {
				cid = []string{tc.wantCID}
			}
			if g := a.lastMD().Get("x-correlation-id"); !equal(g, cid) {
				t.Fatalf("destination saw x-correlation-id %q, want %q", g, cid)
			}
			if tc.wantCID != "" && attrs(s)["tracecar.correlation_id"].AsString() != tc.wantCID {
				t.Fatalf("span correlation_id %q", attrs(s)["tracecar.correlation_id"].AsString())
			}
		})
	}
}

func TestBaggageUntouched(t *testing.T) {
	a, addr := startDest(t, "a")
	r := newRig(t)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "baggage", "tenant=acme,plan=gold", "traceparent", appTraceparent)
	if _, err := r.client(addr).UnaryCall(ctx, unary("x")); err != nil {
		t.Fatal(err)
	}
	if g := a.lastMD().Get("baggage"); len(g) != 1 || g[0] != "tenant=acme,plan=gold" {
		t.Fatalf("baggage %q", g)
	}
}

func checkClientSpan(t *testing.T, s sdktrace.ReadOnlySpan, source string, parent trace.SpanContext) {
	t.Helper()
	if s.SpanKind() != trace.SpanKindClient {
		t.Fatalf("span kind %v", s.SpanKind())
	}
	// The span is otelgrpc's client stats handler's.
	if got := s.InstrumentationScope().Name; got != otelgrpc.ScopeName {
		t.Fatalf("instrumentation scope %q, want %q", got, otelgrpc.ScopeName)
	}
	if got := attrs(s)["tracecar.parent.source"].AsString(); got != source {
		t.Fatalf("parent source %q, want %q", got, source)
	}
	p := s.Parent()
	if !parent.IsValid() {
		if p.IsValid() {
			t.Fatalf("span has parent %s, want a root", p.SpanID())
		}
		return
	}
	if p.TraceID() != parent.TraceID() || p.SpanID() != parent.SpanID() {
		t.Fatalf("span parent %s/%s, want %s/%s", p.TraceID(), p.SpanID(), parent.TraceID(), parent.SpanID())
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
