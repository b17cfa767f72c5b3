package propagation

import (
	"context"
	"net/http"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceContext is a strict W3C Trace Context Level 1 propagator for the
// traceparent and tracestate fields. It implements
// go.opentelemetry.io/otel/propagation.TextMapPropagator; the zero value is
// ready to use. It does not touch baggage.
//
// Field lookup: with an otelprop.HeaderCarrier the canonical keys
// "Traceparent" and "Tracestate" are used, so http.Header does the case
// folding §3.2.1 asks for ("Vendors MUST expect the header name in any case")
// without allocating. Other carriers are asked for the lower-case names;
// a carrier whose keys may arrive in another case must fold case itself
// (gRPC metadata does). Carriers implementing otelprop.ValuesGetter report
// every value, which is how duplicates are seen.
type TraceContext struct{}

var _ otelprop.TextMapPropagator = TraceContext{}

// Fields returns the fields Inject sets, in lower case.
func (TraceContext) Fields() []string {
	return []string{FieldTraceparent, FieldTracestate}
}

// Inject writes the span context of ctx as a version 00 traceparent and, if
// its trace state is not empty, a tracestate.
//
// Inject owns both fields. With an otelprop.HeaderCarrier (typically headers
// cloned from an inbound request) stale values are removed: both fields when
// ctx holds no valid span context (§4.3: an invalid context is not added to
// outgoing requests), and tracestate when the trace state is empty (§3.3.1.1:
// vendors SHOULD avoid sending empty tracestate). Other carriers get an empty
// tracestate only to overwrite a stale non-empty one, since TextMapCarrier
// cannot delete.
func (TraceContext) Inject(ctx context.Context, c otelprop.TextMapCarrier) {
	sc := trace.SpanContextFromContext(ctx)
	h, isHeader := c.(otelprop.HeaderCarrier)
	if !sc.IsValid() {
		if isHeader {
			delete(h, canonTraceparent)
			delete(h, canonTracestate)
		}
		return
	}
	var buf [traceparentLen]byte
	// §3.2.4: vendors MUST construct the new traceparent "according to the
	// highest version of the specification known to the implementation": 00.
	tp := string(AppendTraceparent(buf[:0], sc))
	ts := sc.TraceState().String()
	if isHeader {
		http.Header(h).Set(canonTraceparent, tp)
		if ts != "" {
			http.Header(h).Set(canonTracestate, ts)
		} else {
			delete(h, canonTracestate)
		}
		return
	}
	c.Set(FieldTraceparent, tp)
	if ts != "" || c.Get(FieldTracestate) != "" {
		c.Set(FieldTracestate, ts)
	}
}

// Extract returns ctx with the remote span context found in c, or ctx itself
// when there is no valid traceparent. tracestate is read only after a valid
// traceparent (§3.3: "If the vendor failed to parse traceparent, it MUST NOT
// attempt to parse tracestate"), and an invalid tracestate is dropped without
// affecting the traceparent ("failure to parse tracestate MUST NOT affect the
// parsing of traceparent").
func (TraceContext) Extract(ctx context.Context, c otelprop.TextMapCarrier) context.Context {
	sc, ok := extractSpanContext(c)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func extractSpanContext(c otelprop.TextMapCarrier) (trace.SpanContext, bool) {
	var one [1]string
	tps := fieldValues(c, canonTraceparent, FieldTraceparent, &one)
	// A traceparent sent more than once is invalid and the trace restarts
	// (conformance test test_traceparent_duplicated).
	if len(tps) != 1 {
		return trace.SpanContext{}, false
	}
	sc, r := parseTraceparent(tps[0])
	if r != "" {
		return trace.SpanContext{}, false
	}
	if tss := fieldValues(c, canonTracestate, FieldTracestate, &one); len(tss) > 0 {
		// §4.3 step 3: "If the tracestate header cannot be parsed the vendor
		// MAY discard the entire header." tracecar does.
		if ts, r, _ := parseTracestate(tss); r == "" {
			sc = sc.WithTraceState(ts)
		}
	}
	return sc, true
}

// fieldValues returns every value of a field: straight from the http.Header
// map for a HeaderCarrier (canon must be the canonical MIME key), through
// Values for a ValuesGetter, else the single non-empty Get result stored in
// scratch.
func fieldValues(c otelprop.TextMapCarrier, canon, lower string, scratch *[1]string) []string {
	switch c := c.(type) {
	case otelprop.HeaderCarrier:
		return c[canon]
	case otelprop.ValuesGetter:
		return c.Values(lower)
	}
	if v := c.Get(lower); v != "" {
		scratch[0] = v
		return scratch[:]
	}
	return nil
}
