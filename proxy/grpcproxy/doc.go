// Package grpcproxy is tracecar's outbound gRPC proxy: the app's gRPC
// client dials the sidecar's egress gRPC port instead of its dependency, and
// names the real destination in the :authority. Nothing else changes in the
// app:
//
//	conn, err := grpc.NewClient("127.0.0.1:15002",
//		grpc.WithAuthority("orders.internal:50051"),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// Each call is forwarded over one shared, pooled HTTP/2 transport (h2c, or
// TLS with Settings.TLS) to the authority, with a CLIENT span named after the
// method (OTel semantic conventions v1.43.0, gRPC client span), traceparent
// injected with that span as parent, and a circuit breaker per destination
// host:port. The breaker admits a call when it starts and hears its outcome
// when it ends, so a stream counts once, by its final grpc-status.
//
// Calls tracecar itself ends (destination denied, breaker open, destination
// unreachable) are answered Trailers-Only with a grpc-status and a
// grpc-message naming the destination and the reason.
package grpcproxy
