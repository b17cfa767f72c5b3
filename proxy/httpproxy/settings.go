package httpproxy

import (
	"errors"
	"log/slog"
	"net/url"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// Defaults applied by New to zero Settings fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConns          = 1024
	// DefaultGRPCMessageEvents is the number of message events a gRPC
	// call's span gets per direction: both directions together fit the
	// OTel SDK's default span event limit (OTEL_SPAN_EVENT_COUNT_LIMIT, 128).
	DefaultGRPCMessageEvents = 64
)

// Settings configure the inbound proxy. Zero values mean the documented
// defaults.
type Settings struct {
	// Upstream is the URL of the local app (scheme and host; a path is
	// prepended to every request path). Required.
	Upstream *url.URL
	// Correlation says which header carries the correlation ID and how long
	// it may be. Zero: X-Correlation-ID, 128 bytes; X-Request-ID is honoured
	// when the configured header is absent.
	Correlation propagation.Correlation
	// Edge, when true, does not continue the caller's trace: each request
	// starts a new trace whose server span links to the caller's span
	// (for a sidecar at a trust boundary). Zero: continue the caller's trace.
	Edge bool
	// MaxBodyBytes caps request bodies; larger ones get 413. Zero: no cap.
	MaxBodyBytes int64
	// DialTimeout bounds connecting to the upstream. Zero: 5s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers once the request is sent; exceeded → 504. Streams are not
	// bounded once headers arrive. Zero: 30s; negative: no bound.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled upstream connections idle this long.
	// Zero: 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConns is the size of the upstream keep-alive pool (all to the
	// one upstream host, so it is also the per-host limit). Zero: 1024.
	MaxIdleConns int
	// StreamIdleTimeout cuts a streaming response (unknown length: SSE,
	// chunked) or a WebSocket connection that carries no bytes for this long.
	// Zero: no idle limit. Streams never have a total timeout.
	StreamIdleTimeout time.Duration
	// AccessLog writes one log line per request when true.
	AccessLog bool
	// FailureStatuses are the app's statuses that count as failures for
	// the circuit breaker. Zero: proxy.DefaultFailureStatuses (500, 502,
	// 503, 504; not 429).
	FailureStatuses []int
	// GRPCMessageEvents caps the "message" span events of a gRPC call, one
	// per message, counted separately for each direction; messages beyond
	// the cap are only counted (tracecar.grpc.message_events_dropped), so an
	// endless stream cannot grow its span without bound. Zero: 64
	// (DefaultGRPCMessageEvents); negative: no message events.
	GRPCMessageEvents int
	// GRPCMaxRecvMessageBytes is the largest gRPC message a client may send
	// to the app (the Message-Length of each length-prefixed message, as
	// grpc-go's MaxRecvMsgSize counts it). A larger one ends the call with
	// RESOURCE_EXHAUSTED before any of its bytes reach the app. Zero: no
	// limit of tracecar's own, so the app's limit (grpc-go: 4 MiB by
	// default) is the one that applies.
	GRPCMaxRecvMessageBytes uint32
	// Idempotency enforces Idempotency-Key on the routes it names (by
	// default: POST and PATCH, when the client sends a key). Nil: off.
	Idempotency *IdempotencySettings
}

// Deps are the collaborators of the proxy, passed in rather than taken from
// globals. Nil fields mean: no-op tracing, the strict W3C propagator,
// slog.Default(), no metrics, no circuit breaker, no stitching.
type Deps struct {
	TracerProvider trace.TracerProvider
	Propagator     otelprop.TextMapPropagator
	Logger         *slog.Logger
	Metrics        *Metrics
	// Breaker guards the app: while it is open, requests are answered 503
	// with Retry-After without reaching the app.
	Breaker *breaker.Breaker
	// Stitch remembers in-flight and recent inbound requests by correlation
	// ID so the egress proxy can parent the app's outbound calls under them.
	Stitch *stitch.Registry
	// IdempotencyStore keeps Idempotency-Key claims and records when
	// Settings.Idempotency is set. Nil: an in-memory store for one replica
	// (dedupe.NewMemory with default sizes), closed by Handler.Close.
	IdempotencyStore dedupe.Store
	// IdempotencyMetrics count Idempotency-Key outcomes. Nil: not counted.
	IdempotencyMetrics *IdempotencyMetrics
}

// ErrNoUpstream is returned by New when Settings.Upstream is missing.
var ErrNoUpstream = errors.New("httpproxy: upstream URL is required")

func (s *Settings) applyDefaults() error {
	if s.Upstream == nil || s.Upstream.Host == "" {
		return ErrNoUpstream
	}
	if s.Correlation.Header == "" {
		s.Correlation = propagation.NewCorrelation("", s.Correlation.MaxLen)
	}
	if s.DialTimeout == 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	switch {
	case s.ResponseHeaderTimeout == 0:
		s.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	case s.ResponseHeaderTimeout < 0:
		s.ResponseHeaderTimeout = 0
	}
	if s.IdleConnTimeout == 0 {
		s.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if s.MaxIdleConns == 0 {
		s.MaxIdleConns = DefaultMaxIdleConns
	}
	if s.GRPCMessageEvents == 0 {
		s.GRPCMessageEvents = DefaultGRPCMessageEvents
	}
	if s.FailureStatuses == nil {
		s.FailureStatuses = proxy.DefaultFailureStatuses
	}
	return nil
}

func (d *Deps) applyDefaults() {
	if d.TracerProvider == nil {
		d.TracerProvider = noop.NewTracerProvider()
	}
	if d.Propagator == nil {
		d.Propagator = propagation.TraceContext{}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
}
