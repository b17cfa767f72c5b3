package httpproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/tracecar/tracecar/proxy"
)

// benchGRPCClients returns a client straight to a gRPC app and one through
// the proxy in front of it. The proxy's SDK samples and records every span
// (attributes and all) but exports none, so exporter costs stay out.
func benchGRPCClients(b *testing.B) (direct, proxied testgrpc.TestServiceClient) {
	b.Helper()
	addr := startGRPCApp(b, newGRPCApp())
	_, front := startGRPCProxy(b, addr, io.Discard, sdktrace.WithSampler(sdktrace.AlwaysSample()))
	direct = testgrpc.NewTestServiceClient(dialGRPC(b, addr))
	proxied = testgrpc.NewTestServiceClient(dialGRPC(b, strings.TrimPrefix(front.URL, "http://")))
	return direct, proxied
}

func BenchmarkGRPCUnary(b *testing.B) {
	direct, proxied := benchGRPCClients(b)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: pattern(1024, 0)}}
	for _, bc := range []struct {
		name   string
		client testgrpc.TestServiceClient
	}{{"direct", direct}, {"proxied", proxied}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.client.UnaryCall(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGRPCStreamRoundTrip is one 1 KiB ping-pong on an open
// bidirectional stream.
func BenchmarkGRPCStreamRoundTrip(b *testing.B) {
	direct, proxied := benchGRPCClients(b)
	req := &testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: pattern(1024, 0)}}
	for _, bc := range []struct {
		name   string
		client testgrpc.TestServiceClient
	}{{"direct", direct}, {"proxied", proxied}} {
		b.Run(bc.name, func(b *testing.B) {
			stream, err := bc.client.FullDuplexCall(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := stream.Send(req); err != nil {
					b.Fatal(err)
				}
				if _, err := stream.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkUpstreamTransportPick guards the plain-HTTP hot path: choosing
// the transport must not allocate.
func BenchmarkUpstreamTransportPick(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	g := newRequest(2, "application/grpc")
	b.ReportAllocs()
	for b.Loop() {
		if proxy.IsGRPC(r) || !proxy.IsGRPC(g) {
			b.Fatal("wrong pick")
		}
	}
}
