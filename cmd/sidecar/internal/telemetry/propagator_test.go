package telemetry

import (
	"context"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// countingTraceContext is the W3C TraceContext propagator, counting the
// extractions, to show which propagator Propagator wires in.
type countingTraceContext struct {
	propagation.TraceContext
	extracts *int
}

func (c countingTraceContext) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	*c.extracts++
	return c.TraceContext.Extract(ctx, carrier)
}

func TestPropagator(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	tests := []struct {
		name        string
		names       []string
		fields      []string
		traceparent string // injected
		baggage     string // injected
		extracts    int    // calls of the strict propagator per Extract
	}{
		{"default", nil, []string{"baggage", "traceparent", "tracestate"}, traceparent, "tenant=acme", 1},
		{"empty", []string{}, []string{"baggage", "traceparent", "tracestate"}, traceparent, "tenant=acme", 1},
		{"tracecontext", []string{"tracecontext"}, []string{"traceparent", "tracestate"}, traceparent, "", 1},
		{"baggage", []string{"baggage"}, []string{"baggage"}, "", "tenant=acme", 0},
		{"repeated", []string{"tracecontext", "baggage", "tracecontext"}, []string{"baggage", "traceparent", "tracestate"}, traceparent, "tenant=acme", 1},
		{"none", []string{"none"}, nil, "", "", 0},
		{"none wins", []string{"tracecontext", "baggage", "none"}, nil, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var extracts int
			p := Propagator(tc.names, countingTraceContext{extracts: &extracts})

			fields := p.Fields()
			slices.Sort(fields)
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("Fields() = %v, want %v", fields, tc.fields)
			}

			carrier := propagation.HeaderCarrier{}
			p.Inject(ctx, carrier)
			if got := carrier.Get("traceparent"); got != tc.traceparent {
				t.Errorf("injected traceparent %q, want %q", got, tc.traceparent)
			}
			if got := carrier.Get("baggage"); got != tc.baggage {
				t.Errorf("injected baggage %q, want %q", got, tc.baggage)
			}

			in := propagation.HeaderCarrier{}
			in.Set("traceparent", traceparent)
			in.Set("baggage", "tenant=acme")
			out := p.Extract(context.Background(), in)
			if extracts != tc.extracts {
				t.Errorf("strict propagator extracted %d times, want %d", extracts, tc.extracts)
			}
			if got := trace.SpanContextFromContext(out); got.Equal(sc.WithRemote(true)) != (tc.traceparent != "") {
				t.Errorf("extracted span context %v (traceparent propagated: %v)", got, tc.traceparent != "")
			}
			if got := baggage.FromContext(out).Member("tenant").Value(); (got == "acme") != (tc.baggage != "") {
				t.Errorf("extracted baggage tenant=%q (baggage propagated: %v)", got, tc.baggage != "")
			}
		})
	}
}

func TestPropagatorNilStrict(t *testing.T) {
	p := Propagator([]string{"tracecontext"}, nil)
	in := propagation.HeaderCarrier{}
	in.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	sc := trace.SpanContextFromContext(p.Extract(context.Background(), in))
	if got := sc.SpanID().String(); got != "00f067aa0ba902b7" {
		t.Errorf("nil strict: extracted span ID %q, want 00f067aa0ba902b7", got)
	}
}
