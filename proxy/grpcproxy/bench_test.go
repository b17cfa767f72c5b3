package grpcproxy

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// BenchmarkUnary is one 1 KiB unary call straight to the destination and
// through the proxy. The proxy's SDK records every span (attributes and
// all) but exports none, so exporter costs stay out; the breaker is on.
func BenchmarkUnary(b *testing.B) {
	_, addr := startDest(b, "a")
	r := newRig(b)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	req := unary(string(make([]byte, 1024)))
	for _, bc := range []struct {
		name   string
		client testgrpc.TestServiceClient
	}{{"direct", testgrpc.NewTestServiceClient(cc)}, {"proxied", r.client(addr)}} {
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

// BenchmarkStreamRoundTrip is one 1 KiB ping-pong on an open bidirectional
// stream: the per-message cost once the call is set up.
func BenchmarkStreamRoundTrip(b *testing.B) {
	_, addr := startDest(b, "a")
	r := newRig(b)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	req := &testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 1024)}}
	for _, bc := range []struct {
		name   string
		client testgrpc.TestServiceClient
	}{{"direct", testgrpc.NewTestServiceClient(cc)}, {"proxied", r.client(addr)}} {
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
