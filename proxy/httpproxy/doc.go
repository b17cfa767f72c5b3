// Package httpproxy is tracecar's inbound HTTP proxy: the listener in front of
// the local app. It accepts HTTP/1.1 and HTTP/2 over cleartext (h2c, prior
// knowledge) on one port and forwards to the app through one shared, pooled
// transport, with streamed bodies, trailers, WebSocket upgrades and
// immediately flushed streaming responses (SSE).
//
// For every request it continues or starts a W3C trace, records one SERVER
// span named and attributed per the OTel HTTP semantic conventions, keeps the
// correlation ID (honour, or mint), forwards a traceparent whose parent is
// that span, and answers with the correlation ID and a traceresponse header.
// Failures of the upstream become RFC 9457 problem responses (502, 504, 413)
// through proxy.Status, and the proxy keeps serving. A circuit breaker can
// guard the app, and inbound requests are remembered for stitching the
// app's outbound calls (proxy/stitch).
//
// With IdempotencySettings, Idempotency-Key is enforced before the app is
// touched (draft-ietf-httpapi-idempotency-key-header): one execution per
// key, whose response is recorded in a dedupe.Store and replayed to
// retries; 400, 409, 413 and 422 answer what cannot be executed. Unary gRPC
// calls carrying idempotency-key metadata get the same, with gRPC statuses
// for those answers and headers, message and trailers replayed
// (grpc_idempotency.go).
//
// The handler is built once from a Settings value; zero fields mean the
// documented defaults.
package httpproxy
