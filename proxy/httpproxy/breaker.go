package httpproxy

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// allow asks the app's breaker for admission. Rejections and the transition
// an admission causes (open → half-open) become span events.
func (h *Handler) allow(span trace.Span) (func(breaker.Outcome), error) {
	before := h.breaker.State()
	report, err := h.breaker.Allow()
	if err != nil {
		if span.IsRecording() {
			span.AddEvent(proxy.EventBreakerRejected, trace.WithAttributes(
				attribute.String("breaker.state", h.breaker.State().String()),
				attribute.String("breaker.reason", err.Error())))
		}
		return nil, err
	}
	proxy.NoteBreakerTransition(span, h.breaker, before)
	return report, nil
}

// reportOutcome tells the breaker how the exchange went, noting on the span
// a transition the outcome caused.
func (h *Handler) reportOutcome(span trace.Span, report func(breaker.Outcome), o breaker.Outcome) {
	before := h.breaker.State()
	report(o)
	proxy.NoteBreakerTransition(span, h.breaker, before)
}
