package httpproxy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestGRPCUnaryPayloadAndMetadata(t *testing.T) {
	app := newGRPCApp()
	_, client, _ := newGRPCRig(t, startGRPCApp(t, app))

	ctx := metadata.AppendToOutgoingContext(t.Context(),
		"x-tenant", "acme",
		mdEchoInitial, "hello-initial",
		mdEchoTrailing, string([]byte{0, 1, 0xfe, 0xff}))
	body := pattern(1000, 3)
	var header, trailer metadata.MD
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}},
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetPayload().GetBody(); string(got) != string(body) {
		t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(body))
	}
	md, _, _ := app.seen()
	if v := md.Get("x-tenant"); len(v) != 1 || v[0] != "acme" {
		t.Errorf("app saw x-tenant %q, want [acme]", v)
	}
	if v := header.Get(mdEchoInitial); len(v) != 1 || v[0] != "hello-initial" {
		t.Errorf("response header %s = %q", mdEchoInitial, v)
	}
	if v := trailer.Get(mdEchoTrailing); len(v) != 1 || v[0] != string([]byte{0, 1, 0xfe, 0xff}) {
		t.Errorf("response trailer %s = %q", mdEchoTrailing, v)
	}
	// The correlation ID is minted, sent to the app and returned as a header.
	cid := md.Get("x-correlation-id")
	if len(cid) != 1 || cid[0] == "" {
		t.Fatalf("app saw x-correlation-id %q", cid)
	}
	if v := header.Get("x-correlation-id"); len(v) != 1 || v[0] != cid[0] {
		t.Errorf("client got x-correlation-id %q, app saw %q", v, cid)
	}
}

func TestGRPCServerStreaming(t *testing.T) {
	_, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	sizes := []int32{1, 0, 31415, 9, 65536, 2653}
	req := &testgrpc.StreamingOutputCallRequest{}
	for _, s := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: s})
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), mdEchoInitial, "i", mdEchoTrailing, "t")
	stream, err := client.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sizes {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := resp.GetPayload().GetBody(); string(got) != string(pattern(int(s), i)) {
			t.Fatalf("message %d: %d bytes differ from the %d sent", i, len(got), s)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
	if h, _ := stream.Header(); len(h.Get(mdEchoInitial)) != 1 {
		t.Errorf("header %v lacks %s", h, mdEchoInitial)
	}
	if v := stream.Trailer().Get(mdEchoTrailing); len(v) != 1 || v[0] != "t" {
		t.Errorf("trailer %s = %q", mdEchoTrailing, v)
	}
}

func TestGRPCClientStreaming(t *testing.T) {
	_, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	stream, err := client.StreamingInputCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{27182, 8, 1828, 45904}
	total := 0
	for i, n := range sizes {
		if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: pattern(n, i)}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		total += n
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err) // DATA_LOSS here means the app got different bytes
	}
	if got := int(resp.GetAggregatedPayloadSize()); got != total {
		t.Fatalf("app counted %d bytes, want %d", got, total)
	}
}

// TestGRPCBidiPingPong needs full duplex end to end: each request is
// answered before the next is sent, on one open stream.
func TestGRPCBidiPingPong(t *testing.T) {
	_, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	ctx := metadata.AppendToOutgoingContext(t.Context(), mdEchoInitial, "bidi", mdEchoTrailing, "bye")
	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{31415, 9, 2653, 58979} {
		body := pattern(n, i)
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if string(resp.GetPayload().GetBody()) != string(body) {
			t.Fatalf("reply %d differs from the %d bytes sent", i, n)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
	if h, _ := stream.Header(); len(h.Get(mdEchoInitial)) != 1 {
		t.Errorf("header %v lacks %s", h, mdEchoInitial)
	}
	if v := stream.Trailer().Get(mdEchoTrailing); len(v) != 1 || v[0] != "bye" {
		t.Errorf("trailer %s = %q", mdEchoTrailing, v)
	}
}

func TestGRPCStatusArrivesExactly(t *testing.T) {
	_, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	for _, tc := range []struct {
		code codes.Code
		msg  string
	}{
		{codes.NotFound, "no such order"},
		{codes.Internal, "ünïcode, 100% broken\nsecond line"},
		{codes.InvalidArgument, ""},
	} {
		_, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{
			ResponseStatus: &testgrpc.EchoStatus{Code: int32(tc.code), Message: tc.msg}})
		st, _ := status.FromError(err)
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
	// A status ending a stream arrives as well.
	stream, err := client.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testgrpc.StreamingOutputCallRequest{
		ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "stream refused"}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != "stream refused" {
		t.Errorf("stream ended with %v %q", st.Code(), st.Message())
	}
}

func TestGRPCLargeMessagesBothWays(t *testing.T) {
	_, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	body := pattern(2<<20, 5)
	resp, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetPayload().GetBody(); string(got) != string(body) {
		t.Fatalf("2 MiB echo: got %d bytes, not the %d sent", len(got), len(body))
	}
}

func TestGRPCDeadlineReachesApp(t *testing.T) {
	app := newGRPCApp()
	_, client, _ := newGRPCRig(t, startGRPCApp(t, app))
	const timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	clientDL, _ := ctx.Deadline()
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	_, dl, ok := app.seen()
	if !ok {
		t.Fatal("the app saw no deadline: grpc-timeout was lost")
	}
	// grpc-timeout carries the time left, so the app's deadline is the
	// client's shifted by the transit time (and grpc-go's rounding up to a
	// whole microsecond), never a different bound.
	if skew := dl.Sub(clientDL); skew < 0 || skew > timeout/10 {
		t.Fatalf("app's deadline is %v off the client's %v timeout", skew, timeout)
	}
}

func TestGRPCExpiredDeadline(t *testing.T) {
	app := newGRPCApp()
	_, client, _ := newGRPCRig(t, startGRPCApp(t, app))
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), mdBlock, "1"), 200*time.Millisecond)
	defer cancel()
	_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	within(t, app.blocked, 5*time.Second, "call start")
	if err := within(t, app.ended, 5*time.Second, "app context end"); err == nil {
		t.Fatal("app context ended without an error")
	}
}

func TestGRPCCancellationReachesApp(t *testing.T) {
	app := newGRPCApp()
	r, client, _ := newGRPCRig(t, startGRPCApp(t, app))
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(t.Context(), mdBlock, "1"))
	done := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		done <- err
	}()
	within(t, app.blocked, 5*time.Second, "call start")
	cancel()
	if err := within(t, app.ended, 5*time.Second, "app context end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("app context ended with %v, want Canceled", err)
	}
	if err := within(t, done, 5*time.Second, "client return"); status.Code(err) != codes.Canceled {
		t.Fatalf("client got %v, want Canceled", err)
	}
	span := r.onlySpan()
	if got := attr(t, span, "rpc.response.status_code").AsString(); got != "CANCELLED" {
		t.Errorf("rpc.response.status_code = %q, want CANCELLED", got)
	}
	if span.Status().Code.String() == "Error" {
		t.Errorf("a caller's cancellation marked the span Error: %v", span.Status())
	}
}

func TestGRPCUpstreamDown(t *testing.T) {
	down := closedAddr(t)
	r, client, _ := newGRPCRig(t, down)
	_, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
	for _, want := range []string{"http://" + down, "upstream unreachable", "connection refused"} {
		if !strings.Contains(st.Message(), want) {
			t.Errorf("message %q does not contain %q", st.Message(), want)
		}
	}
	span := r.onlySpan()
	if got := attr(t, span, "rpc.response.status_code").AsString(); got != "UNAVAILABLE" {
		t.Errorf("rpc.response.status_code = %q", got)
	}
	if got := attr(t, span, "error.type").AsString(); got != "upstream_unreachable" {
		t.Errorf("error.type = %q", got)
	}
	if span.Status().Code.String() != "Error" {
		t.Errorf("span status %v, want Error", span.Status())
	}
}

// TestGRPCUpstreamTimeout: an app that sends no headers within the
// response-header bound is answered DEADLINE_EXCEEDED, and its call is
// cancelled.
func TestGRPCUpstreamTimeout(t *testing.T) {
	app := newGRPCApp()
	_, client, _ := newGRPCRig(t, startGRPCApp(t, app), func(s *Settings) {
		s.ResponseHeaderTimeout = 100 * time.Millisecond
	})
	ctx := metadata.AppendToOutgoingContext(t.Context(), mdBlock, "1")
	_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "upstream timed out") {
		t.Fatalf("got %v %q, want DeadlineExceeded naming the timeout", st.Code(), st.Message())
	}
	within(t, app.ended, 5*time.Second, "app context end")
}
