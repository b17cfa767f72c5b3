// Package egress is tracecar's outbound forward proxy: the app points
// HTTP_PROXY and HTTPS_PROXY at it and changes nothing else. It is built on
// github.com/elazarl/goproxy (v1.9.3), with tracecar's own transport,
// admission, tracing and circuit breaking around it.
//
// Plain-HTTP requests (absolute form) get one CLIENT span each, named and
// attributed per the OTel HTTP client semantic conventions; the destination
// receives a traceparent whose parent is that span, the correlation ID, and
// the app's baggage unchanged. The span's parent is found in this order, and
// tracecar.parent.source says which:
//
//	propagated      the app forwarded a valid traceparent
//	correlation_id  the app forwarded the correlation ID (or X-Request-ID) of
//	                an inbound request the stitch registry remembers: the
//	                span is parented under that request's server span
//	inferred        serial inference is on and exactly one inbound request
//	                is in flight (its correlation ID is added when the
//	                request has none)
//	none            a new trace
//
// CONNECT requests become tunnels that carry the bytes untouched (TLS is not
// intercepted), with one span per tunnel: destination, bytes each way,
// duration and how it ended (client_closed, upstream_closed, error,
// shutdown).
//
// Every request passes, in order: the destination allow-list (403), the
// concurrency bound over requests and tunnels (503, never a queue), and the
// destination's circuit breaker, one per host:port (503 with Retry-After,
// without dialing). Outcomes reach the breaker when a response ends (a
// stream when it ends; a tunnel when its connection is made); a client that
// hangs up is never counted. Plain-HTTP requests have a total timeout (504)
// from which streams are exempt once their headers arrive. Every response
// the proxy writes itself is an RFC 9457 problem.
//
// Requests that are not proxy requests (origin form) get 400: the egress
// listener serves nothing of its own.
package egress
