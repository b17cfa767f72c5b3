// Package proxy holds the vocabulary that tracecar's protocol proxies share:
// the sentinel errors of a proxied exchange, their mapping to HTTP statuses
// (the one place that mapping lives), RFC 9457 problem bodies, the slog
// handler that stamps every log line with trace_id, span_id and
// correlation_id, the gRPC wire helpers (content-type detection, :path,
// grpc-status and grpc-message, Trailers-Only errors), and the pool of body
// copy buffers.
//
// Protocol packages (proxy/httpproxy, later proxy/egress, proxy/grpcproxy)
// import this package; it never imports them.
package proxy
