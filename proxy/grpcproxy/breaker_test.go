package grpcproxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

func TestBreakerTripsOnUnavailable(t *testing.T) {
	a, addr := startDest(t, "a")
	r := newRig(t)
	c := r.client(addr)
	for i := range breakerSettings.ConsecutiveFailures {
		_, err := c.UnaryCall(t.Context(), failing(codes.Unavailable))
		if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "asked for Unavailable" {
			t.Fatalf("call %d: %v, want the destination's UNAVAILABLE", i, err)
		}
	}
	spans := r.ended(breakerSettings.ConsecutiveFailures)
	if !hasEvent(spans[len(spans)-1], proxy.EventBreakerTransition) {
		t.Fatal("the call that tripped the breaker has no transition event")
	}
	if st := r.breakers.Get(addr).State(); st != breaker.StateOpen {
		t.Fatalf("breaker %v after %d UNAVAILABLE", st, breakerSettings.ConsecutiveFailures)
	}

	// Open: calls fail at once, the destination sees none of them.
	for range 5 {
		_, err := c.UnaryCall(t.Context(), unary("x"))
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "circuit open for "+addr) ||
			!strings.Contains(st.Message(), "consecutive") {
			t.Fatalf("open breaker: %v, want UNAVAILABLE naming %s and why", err, addr)
		}
	}
	if n := a.calls.Load(); n != int64(breakerSettings.ConsecutiveFailures) {
		t.Fatalf("destination saw %d calls, want %d (open must not dial)", n, breakerSettings.ConsecutiveFailures)
	}
	last := r.ended(breakerSettings.ConsecutiveFailures + 5)
	s := last[len(last)-1]
	if !hasEvent(s, proxy.EventBreakerRejected) || attrs(s)["error.type"].AsString() != "circuit_open" {
		t.Fatalf("rejected call's span: events %v attrs %v", s.Events(), attrs(s))
	}

	// After the open period a probe goes through; successes close it.
	r.clock.Advance(breakerSettings.OpenTimeout + time.Second)
	for range 3 {
		if _, err := c.UnaryCall(t.Context(), unary("x")); err != nil {
			t.Fatalf("after the open period: %v", err)
		}
	}
	if st := r.breakers.Get(addr).State(); st != breaker.StateClosed {
		t.Fatalf("breaker %v after successful probes", st)
	}
}

func TestBreakerTripsOnDialFailure(t *testing.T) {
	dest := closedAddr(t)
	r := newRig(t)
	c := r.client(dest)
	for range breakerSettings.ConsecutiveFailures {
		_, _ = c.UnaryCall(t.Context(), unary("x"))
	}
	r.ended(breakerSettings.ConsecutiveFailures)
	_, err := c.UnaryCall(t.Context(), unary("x"))
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "circuit open for "+dest) {
		t.Fatalf("got %v, want an open circuit", err)
	}
}

func TestBreakerIgnoresResourceExhausted(t *testing.T) {
	a, addr := startDest(t, "a")
	r := newRig(t)
	c := r.client(addr)
	const n = 10
	for range n {
		if got := unaryCtx(t, c, t.Context(), failing(codes.ResourceExhausted)); got != codes.ResourceExhausted {
			_, err := c.UnaryCall(t.Context(), failing(codes.ResourceExhausted))
			t.Fatalf("got %v: %v", got, err)
		}
	}
	r.ended(n)
	if a.calls.Load() != n || r.breakers.Get(addr).State() != breaker.StateClosed {
		t.Fatalf("calls %d breaker %v: RESOURCE_EXHAUSTED must not trip it", a.calls.Load(), r.breakers.Get(addr).State())
	}
}

func TestBreakerIgnoresClientCancellation(t *testing.T) {
	a, addr := startDest(t, "a")
	r := newRig(t)
	c := r.client(addr)
	const n = 5
	for i := range n {
		ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(t.Context(), mdBlock, "1"))
		done := make(chan codes.Code, 1)
		go func() { done <- unaryCtx(t, c, ctx, unary("x")) }()
		select {
		case <-a.blocked:
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d never reached the destination", i)
		}
		cancel()
		if got := <-done; got != codes.Canceled {
			t.Fatalf("call %d: %v, want CANCELLED", i, got)
		}
	}
	for _, s := range r.ended(n) {
		if got := attrs(s)["rpc.response.status_code"].AsString(); got != "CANCELLED" {
			t.Fatalf("cancelled call's span status_code %q", got)
		}
	}
	if st := r.breakers.Get(addr).State(); st != breaker.StateClosed {
		t.Fatalf("breaker %v after %d client cancellations", st, n)
	}
	if _, err := c.UnaryCall(t.Context(), unary("x")); err != nil {
		t.Fatalf("after cancellations: %v", err)
	}
}

func TestBreakerCustomFailureCodes(t *testing.T) {
	_, addr := startDest(t, "a")
	r := newRig(t, func(s *Settings) { s.FailureCodes = []codes.Code{codes.Internal} })
	c := r.client(addr)
	for range breakerSettings.ConsecutiveFailures {
		unaryCtx(t, c, t.Context(), failing(codes.Unavailable)) // not a failure now
	}
	r.ended(breakerSettings.ConsecutiveFailures)
	if st := r.breakers.Get(addr).State(); st != breaker.StateClosed {
		t.Fatalf("UNAVAILABLE tripped a breaker configured for INTERNAL only")
	}
	for range breakerSettings.ConsecutiveFailures {
		unaryCtx(t, c, t.Context(), failing(codes.Internal))
	}
	r.ended(2 * breakerSettings.ConsecutiveFailures)
	if st := r.breakers.Get(addr).State(); st != breaker.StateOpen {
		t.Fatalf("breaker %v after INTERNAL failures", st)
	}
}
