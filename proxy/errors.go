package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/tracecar/tracecar/proxy/breaker"
)

// Sentinel errors of a proxied exchange. Protocol packages wrap them with %w;
// Status maps them to an HTTP status in exactly one place.
var (
	// ErrUpstreamUnreachable: the connection to the upstream could not be
	// made (refused, no route, dial timeout). The upstream never saw the
	// request.
	ErrUpstreamUnreachable = errors.New("upstream unreachable")
	// ErrUpstreamTimeout: the upstream accepted the request but did not
	// answer in time.
	ErrUpstreamTimeout = errors.New("upstream timed out")
	// ErrUpstreamProtocol: the upstream closed the connection or answered
	// with something that is not a valid response.
	ErrUpstreamProtocol = errors.New("upstream failed")
	// ErrBodyTooLarge: the request body exceeded the configured limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrClientGone: the client hung up before the response was complete.
	// Nothing can be written; logs record it as status 499, as nginx does.
	ErrClientGone = errors.New("client closed request")
)

// StatusClientClosedRequest is the status logged (never sent) when the
// client hangs up first (nginx's 499).
const StatusClientClosedRequest = 499

// Classify wraps a raw transport error from forwarding a request in the
// sentinel that names its cause, keeping the original in the chain. ctx is
// the inbound request's context: when it is done the client left first.
func Classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrUpstreamUnreachable, ErrUpstreamTimeout, ErrUpstreamProtocol, ErrBodyTooLarge, ErrClientGone, breaker.ErrOpen} {
		if errors.Is(err, s) {
			return err
		}
	}
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return fmt.Errorf("%w: limit is %d bytes", ErrBodyTooLarge, maxBytes.Limit)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %w", ErrUpstreamUnreachable, err)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return fmt.Errorf("%w: %w", ErrUpstreamProtocol, err)
}

// Status is the HTTP status for an error returned by Classify. It is the one
// place where tracecar's errors become statuses.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrClientGone):
		return StatusClientClosedRequest
	case errors.Is(err, breaker.ErrOpen):
		// The upstream was not tried: the circuit is open. 503 with
		// Retry-After, as Envoy and Linkerd answer a fail-fast.
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUpstreamTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrUpstreamUnreachable), errors.Is(err, ErrUpstreamProtocol):
		return http.StatusBadGateway
	default:
		return http.StatusBadGateway
	}
}

// ErrorType is the low-cardinality `error.type` value (OTel semantic
// conventions: "SHOULD be predictable, and SHOULD have low cardinality") for
// an error returned by Classify.
func ErrorType(err error) string {
	switch {
	case errors.Is(err, ErrClientGone):
		return "client_closed"
	case errors.Is(err, breaker.ErrOpen):
		return "circuit_open"
	case errors.Is(err, ErrBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, ErrUpstreamTimeout):
		return "upstream_timeout"
	case errors.Is(err, ErrUpstreamUnreachable):
		return "upstream_unreachable"
	default:
		return "upstream_failed"
	}
}
