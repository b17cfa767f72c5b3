package proxy

import (
	"context"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// Parent says how an outbound call's CLIENT span found its parent, and which
// correlation ID the call carries.
type Parent struct {
	// Source is one of the Parent* values of AttrParentSource.
	Source string
	// CorrelationID is the call's correlation ID, "" when none is known.
	CorrelationID string
	// SetCorrelationID is true when the ID came from the stitch registry and
	// must be added to the outgoing call.
	SetCorrelationID bool
}

// ParentResolver finds the parent of an outbound call's CLIENT span, the
// same way for every protocol the sidecar proxies outbound.
type ParentResolver struct {
	Propagator  otelprop.TextMapPropagator
	Correlation propagation.Correlation
	// Stitch is the inbound side's registry; nil: only propagated context
	// counts.
	Stitch *stitch.Registry
	// SerialInference parents a context-free call under the only inbound
	// request in flight.
	SerialInference bool
}

// Resolve returns ctx with the parent and how it was found, in this order:
// a valid traceparent on the call ("propagated"; the inbound request of that
// trace supplies a correlation ID the app dropped); the correlation ID (the
// configured header, else X-Request-ID) of an inbound request the registry
// remembers ("correlation_id", parented under its SERVER span); with serial
// inference, the only inbound request in flight ("inferred"); else "none",
// a new trace.
func (pr ParentResolver) Resolve(ctx context.Context, carrier otelprop.TextMapCarrier) (context.Context, Parent) {
	ctx = pr.Propagator.Extract(ctx, carrier)
	cid, res := pr.Correlation.Lookup(carrier)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		p := Parent{Source: ParentPropagated, CorrelationID: cid}
		if pr.Stitch != nil && res == propagation.CorrelationAbsent {
			if e, ok := pr.Stitch.LookupTrace(sc.TraceID()); ok && e.CorrelationID != "" {
				p.CorrelationID, p.SetCorrelationID = e.CorrelationID, true
			}
		}
		return ctx, p
	}
	if pr.Stitch != nil && res == propagation.CorrelationValid {
		if e, ok := pr.Stitch.Lookup(cid); ok && e.SpanContext.IsValid() {
			// A local parent, so a parent-based sampler follows the inbound
			// request's decision.
			return trace.ContextWithSpanContext(ctx, e.SpanContext), Parent{Source: ParentCorrelationID, CorrelationID: cid}
		}
	}
	if pr.SerialInference && pr.Stitch != nil {
		if e, ok := pr.Stitch.Sole(); ok && e.SpanContext.IsValid() {
			p := Parent{Source: ParentInferred, CorrelationID: cid}
			if res == propagation.CorrelationAbsent && e.CorrelationID != "" {
				p.CorrelationID, p.SetCorrelationID = e.CorrelationID, true
			}
			return trace.ContextWithSpanContext(ctx, e.SpanContext), p
		}
	}
	return ctx, Parent{Source: ParentNone, CorrelationID: cid}
}
