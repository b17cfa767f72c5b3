package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

func newRequest(major int, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/grpc.testing.TestService/UnaryCall", nil)
	r.ProtoMajor = major
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestGRPCSpanContinuesCallerTrace(t *testing.T) {
	app := newGRPCApp()
	r, client, _ := newGRPCRig(t, startGRPCApp(t, app))
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	ctx := metadata.AppendToOutgoingContext(t.Context(),
		"traceparent", "00-"+traceID+"-"+parent+"-01",
		"x-correlation-id", "order-42")
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	span := r.onlySpan()
	if span.Name() != "grpc.testing.TestService/UnaryCall" {
		t.Errorf("span name %q", span.Name())
	}
	if span.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kind %v", span.SpanKind())
	}
	// The span is otelgrpc's stats handler's, as in a grpc-go server.
	if got := span.InstrumentationScope().Name; got != otelgrpc.ScopeName {
		t.Errorf("instrumentation scope %q, want %q", got, otelgrpc.ScopeName)
	}
	if got := span.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("trace ID %s, want the caller's %s", got, traceID)
	}
	if got := span.Parent().SpanID().String(); got != parent || !span.Parent().IsRemote() {
		t.Errorf("parent %s (remote %v), want the caller's %s", got, span.Parent().IsRemote(), parent)
	}
	for k, want := range map[string]string{
		"rpc.system.name":          "grpc",
		"rpc.method":               "grpc.testing.TestService/UnaryCall",
		"rpc.response.status_code": "OK",
		"network.protocol.name":    "http",
		"network.protocol.version": "2",
		"server.address":           "127.0.0.1",
		"network.peer.address":     "127.0.0.1",
		"tracecar.correlation_id":  "order-42",
	} {
		if got := attr(t, span, k).String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if attr(t, span, "server.port").AsInt64() == 0 || attr(t, span, "network.peer.port").AsInt64() == 0 {
		t.Error("server.port or network.peer.port missing")
	}
	if span.Status().Code != codes.Unset {
		t.Errorf("status %v, want Unset", span.Status())
	}
	// The app is this span's child, and sees the caller's correlation ID.
	md, _, _ := app.seen()
	want := "00-" + traceID + "-" + span.SpanContext().SpanID().String() + "-01"
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("app saw traceparent %q, want %q", got, want)
	}
	if got := md.Get("x-correlation-id"); len(got) != 1 || got[0] != "order-42" {
		t.Errorf("app saw x-correlation-id %q", got)
	}
}

// In edge mode a gRPC call starts a trace of its own, linked to the
// caller's span (otelgrpc's public-endpoint option), as HTTP requests do.
func TestGRPCSpanEdgeMode(t *testing.T) {
	r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()), func(s *Settings) { s.Edge = true })
	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", "00-"+traceID+"-"+parent+"-01")
	if _, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	span := r.onlySpan()
	if got := span.SpanContext().TraceID().String(); got == traceID {
		t.Errorf("edge span continued the caller's trace %s", got)
	}
	if span.Parent().IsValid() {
		t.Errorf("edge span has parent %s, want a root", span.Parent().SpanID())
	}
	if l := span.Links(); len(l) != 1 || l[0].SpanContext.TraceID().String() != traceID || l[0].SpanContext.SpanID().String() != parent {
		t.Errorf("links %+v, want one to the caller's span %s", l, parent)
	}
}

func TestGRPCSpanStatus(t *testing.T) {
	for _, tc := range []struct {
		code      grpccodes.Code
		name      string
		wantError bool
	}{
		{grpccodes.NotFound, "NOT_FOUND", false},
		{grpccodes.InvalidArgument, "INVALID_ARGUMENT", false},
		{grpccodes.Internal, "INTERNAL", true},
		{grpccodes.Unavailable, "UNAVAILABLE", true},
		{grpccodes.DataLoss, "DATA_LOSS", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
			_, _ = client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{
				ResponseStatus: &testgrpc.EchoStatus{Code: int32(tc.code), Message: "why: 100%"}})
			span := r.onlySpan()
			if got := attr(t, span, "rpc.response.status_code").AsString(); got != tc.name {
				t.Errorf("rpc.response.status_code = %q, want %q", got, tc.name)
			}
			if !tc.wantError {
				if span.Status().Code != codes.Unset {
					t.Errorf("a caller's error %s set status %v", tc.name, span.Status())
				}
				return
			}
			if span.Status().Code != codes.Error || span.Status().Description != "why: 100%" {
				t.Errorf("status %v, want Error with the app's message", span.Status())
			}
			if got := attr(t, span, "error.type").AsString(); got != tc.name {
				t.Errorf("error.type = %q, want %q", got, tc.name)
			}
		})
	}
}

func TestGRPCSpanStreamingTrailerStatus(t *testing.T) {
	r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	stream, err := client.StreamingOutputCall(t.Context(), &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}},
		ResponseStatus:     &testgrpc.EchoStatus{Code: int32(grpccodes.Unavailable), Message: "draining"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); grpccodes.Unavailable != statusCode(err) {
		t.Fatalf("got %v", err)
	}
	span := r.onlySpan()
	if span.Name() != "grpc.testing.TestService/StreamingOutputCall" {
		t.Errorf("span name %q", span.Name())
	}
	if got := attr(t, span, "rpc.response.status_code").AsString(); got != "UNAVAILABLE" {
		t.Errorf("status from the trailer = %q", got)
	}
	if span.Status().Code != codes.Error || span.Status().Description != "draining" {
		t.Errorf("status %v", span.Status())
	}
}

// TestGRPCSpanUnknownMethod: a method the app does not know does not name
// the span (rpc.method _OTHER).
func TestGRPCSpanUnknownMethod(t *testing.T) {
	r, _, cc := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	err := cc.Invoke(t.Context(), "/grpc.testing.TestService/NoSuchCall", &testgrpc.Empty{}, &testgrpc.Empty{})
	if statusCode(err) != grpccodes.Unimplemented {
		t.Fatalf("got %v", err)
	}
	span := r.onlySpan()
	if span.Name() != "grpc" {
		t.Errorf("span name %q, want grpc", span.Name())
	}
	if got := attr(t, span, "rpc.method").AsString(); got != "_OTHER" {
		t.Errorf("rpc.method = %q", got)
	}
	if got := attr(t, span, "rpc.method_original").AsString(); got != "/grpc.testing.TestService/NoSuchCall" {
		t.Errorf("rpc.method_original = %q", got)
	}
}

func TestGRPCOutcomeFallbacks(t *testing.T) {
	rw := &responseWriter{rw: httptest.NewRecorder()}
	if c, fromApp, _ := grpcOutcome(rw, http.StatusServiceUnavailable); c != grpccodes.Unavailable || !fromApp {
		t.Errorf("503 without grpc-status: %v %v", c, fromApp)
	}
	if c, _, _ := grpcOutcome(rw, http.StatusOK); c != grpccodes.Internal {
		t.Errorf("200 without grpc-status: %v", c)
	}
	rw.Header()["Trailer:Grpc-Status"] = []string{"abc"}
	if c, _, _ := grpcOutcome(rw, http.StatusOK); c != grpccodes.Unknown {
		t.Errorf("unparseable grpc-status: %v", c)
	}
}
