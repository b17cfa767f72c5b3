package proxy

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/proxy/breaker"
)

// GRPCCode is the gRPC status for an error returned by Classify: what a gRPC
// caller is told when tracecar, not the app, ends the call. It is the gRPC
// counterpart of Status and follows gRPC's own mapping of HTTP failures
// (grpc/doc/http-grpc-status-mapping.md: 502, 503 and 504 become
// UNAVAILABLE), except that a timeout keeps its meaning as DEADLINE_EXCEEDED.
func GRPCCode(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrClientGone):
		return codes.Canceled
	case errors.Is(err, breaker.ErrOpen):
		return codes.Unavailable
	case errors.Is(err, ErrBodyTooLarge):
		return codes.ResourceExhausted
	case errors.Is(err, ErrUpstreamTimeout):
		return codes.DeadlineExceeded
	default: // unreachable or failed upstream: the call may be retried
		return codes.Unavailable
	}
}
