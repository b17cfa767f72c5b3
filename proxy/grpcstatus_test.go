package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/proxy/breaker"
)

func TestGRPCCode(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"client gone", Classify(gone, context.Canceled), codes.Canceled},
		{"breaker open", &breaker.OpenError{Upstream: "app", RetryAfter: time.Second}, codes.Unavailable},
		{"body too large", fmt.Errorf("%w: limit", ErrBodyTooLarge), codes.ResourceExhausted},
		{"timeout", Classify(live, context.DeadlineExceeded), codes.DeadlineExceeded},
		{"unreachable", Classify(live, dial), codes.Unavailable},
		{"protocol", Classify(live, errors.New("EOF")), codes.Unavailable},
	} {
		if got := GRPCCode(tc.err); got != tc.want {
			t.Errorf("%s: GRPCCode(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
