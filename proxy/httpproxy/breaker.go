package httpproxy

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy/breaker"
)

// Span events of the circuit breaker guarding the app.
const (
	eventBreakerRejected   = "breaker.rejected"
	eventBreakerTransition = "breaker.transition"
)

// allow asks the app's breaker for admission. Rejections and the transition
// an admission causes (open → half-open) become span events.
func (h *Handler) allow(span trace.Span) (func(breaker.Outcome), error) {
	before := h.breaker.State()
	report, err := h.breaker.Allow()
	if err != nil {
		if span.IsRecording() {
			span.AddEvent(eventBreakerRejected, trace.WithAttributes(
				attribute.String("breaker.state", h.breaker.State().String()),
				attribute.String("breaker.reason", err.Error())))
		}
		return nil, err
	}
	h.noteTransition(span, before)
	return report, nil
}

// reportOutcome tells the breaker how the exchange went, noting on the span
// a transition the outcome caused.
func (h *Handler) reportOutcome(span trace.Span, report func(breaker.Outcome), o breaker.Outcome) {
	before := h.breaker.State()
	report(o)
	h.noteTransition(span, before)
}

func (h *Handler) noteTransition(span trace.Span, before breaker.State) {
	if after := h.breaker.State(); after != before && span.IsRecording() {
		span.AddEvent(eventBreakerTransition, trace.WithAttributes(
			attribute.String("breaker.from", before.String()),
			attribute.String("breaker.to", after.String())))
	}
}
