package proxy

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy/breaker"
)

// DefaultFailureStatuses are the upstream statuses that count as failures
// for circuit breaking. 429 is absent on purpose: a rate-limited upstream is
// healthy and asking for less, not failing.
var DefaultFailureStatuses = []int{
	http.StatusInternalServerError, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// AttrParentSource says how an outbound span found its parent:
// "propagated" (the app forwarded traceparent), "correlation_id" (the app
// forwarded the correlation ID of a known inbound request), "inferred" (the
// only inbound request in flight) or "none".
const AttrParentSource = attribute.Key("tracecar.parent.source")

// Values of AttrParentSource.
const (
	ParentPropagated    = "propagated"
	ParentCorrelationID = "correlation_id"
	ParentInferred      = "inferred"
	ParentNone          = "none"
)

// Outcome turns the result of one upstream exchange into what the circuit
// breaker counts. err is an error from Classify (or nil); status is the
// upstream's status when it answered. A client that hung up never counts:
// it says nothing about the upstream.
func Outcome(status int, err error, failureStatuses []int) breaker.Outcome {
	switch {
	case errors.Is(err, ErrClientGone), errors.Is(err, ErrBodyTooLarge), errors.Is(err, breaker.ErrOpen):
		return breaker.Ignore
	case err != nil:
		return breaker.Failure
	case slices.Contains(failureStatuses, status):
		return breaker.Failure
	default:
		return breaker.Success
	}
}

// RetryAfter is how long a caller should wait before retrying after err,
// when err says so (an open circuit).
func RetryAfter(err error) (time.Duration, bool) {
	var open *breaker.OpenError
	if errors.As(err, &open) {
		return open.RetryAfter, true
	}
	return 0, false
}

// Span events of circuit breaking, shared by the protocol proxies.
const (
	EventBreakerRejected   = "breaker.rejected"
	EventBreakerTransition = "breaker.transition"
)

// NoteBreakerTransition adds a breaker.transition event to span when b left
// state before during this request's Allow or report: from, to, the reason
// and the counts that decided it.
func NoteBreakerTransition(span trace.Span, b *breaker.Breaker, before breaker.State) {
	if b.State() == before || !span.IsRecording() {
		return
	}
	t := b.LastTransition()
	span.AddEvent(EventBreakerTransition, trace.WithAttributes(
		attribute.String("breaker.upstream", t.Upstream),
		attribute.String("breaker.from", t.From.String()),
		attribute.String("breaker.to", t.To.String()),
		attribute.String("breaker.reason", t.Reason),
		attribute.Int("breaker.requests", t.Counts.Requests),
		attribute.Int("breaker.failures", t.Counts.Failures),
		attribute.Int("breaker.consecutive_failures", t.Counts.ConsecutiveFailures),
	))
}
