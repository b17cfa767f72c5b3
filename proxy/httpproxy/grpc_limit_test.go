package httpproxy

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// countingApp counts the unary calls and the stream messages that reach
// the app.
type countingApp struct {
	*grpcApp
	unary, streamed atomic.Int64
}

func (a *countingApp) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	a.unary.Add(1)
	return a.grpcApp.UnaryCall(ctx, req)
}

func (a *countingApp) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		a.streamed.Add(1)
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

func payload(n int) *testgrpc.Payload { return &testgrpc.Payload{Body: pattern(n, 7)} }

// A request message over GRPCMaxRecvMessageBytes ends the call with
// RESOURCE_EXHAUSTED, and the app never sees it; messages within the limit
// pass.
func TestGRPCMaxRecvMessageBytes(t *testing.T) {
	const limit = 64 << 10
	app := &countingApp{grpcApp: newGRPCApp()}
	r, client, _ := newGRPCRig(t, startGRPCApp(t, app), func(s *Settings) { s.GRPCMaxRecvMessageBytes = limit })

	big := grpc.MaxCallSendMsgSize(8 << 20)
	if _, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{Payload: payload(limit - 64)}, big); err != nil {
		t.Fatalf("call under the limit: %v", err)
	}
	_, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{Payload: payload(2 * limit)}, big)
	if got := statusCode(err); got != codes.ResourceExhausted {
		t.Fatalf("call over the limit: code %v (%v), want ResourceExhausted", got, err)
	}
	if !strings.Contains(err.Error(), "larger than max") {
		t.Errorf("message %q does not say why", err)
	}
	if n := app.unary.Load(); n != 1 {
		t.Errorf("app executed %d unary calls, want 1 (the one under the limit)", n)
	}
	if typ := attr(t, r.waitSpans(2)[1], "error.type").String(); typ != "body_too_large" {
		t.Errorf("error.type %q, want body_too_large", typ)
	}

	// On a stream the call ends at the oversized message; the earlier ones
	// were delivered and answered.
	stream, err := client.FullDuplexCall(t.Context(), big)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload(1024)}); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Recv(); err != nil || len(res.GetPayload().GetBody()) != 1024 {
		t.Fatalf("first message: %v", err)
	}
	_ = stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload(2 * limit)})
	_, err = stream.Recv()
	if got := statusCode(err); got != codes.ResourceExhausted {
		t.Fatalf("stream over the limit: code %v (%v), want ResourceExhausted", got, err)
	}
	if n := app.streamed.Load(); n != 1 {
		t.Errorf("app received %d stream messages, want 1", n)
	}
}
