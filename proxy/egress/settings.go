package egress

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// Defaults applied by New to zero Settings fields.
const (
	DefaultMaxConcurrent         = 1024
	DefaultRequestTimeout        = 30 * time.Second
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 64
)

// Settings configure the egress proxy. Zero values mean the documented
// defaults.
type Settings struct {
	// Allow is the destination allow-list (see ParseAllowList): "host",
	// "host:port", "*.example.com", "10.0.0.0/8", "127.0.0.1". Empty: any
	// destination. A denied request gets 403 (a CONNECT too) and is counted.
	Allow []string
	// MaxConcurrent bounds the plain-HTTP requests and CONNECT tunnels in
	// flight; one over it gets 503 at once, never a queue. Zero: 1024.
	MaxConcurrent int
	// RequestTimeout bounds a plain-HTTP request from admission to the end
	// of its response; exceeded → 504 (or a cut body once headers went out).
	// Streams are exempt once their headers arrive: text/event-stream
	// responses and protocol upgrades; CONNECT tunnels are never bounded.
	// Zero: 30s; negative: no bound.
	RequestTimeout time.Duration
	// DialTimeout bounds connecting to a destination. Zero: 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake for https:// URLs sent
	// in absolute form. Zero: 10s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request is sent; exceeded → 504. Zero: 30s; negative: no bound.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled destination connections idle this long.
	// Zero: 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the keep-alive pool per destination (Go's
	// default of 2 makes a busy proxy redial constantly). Zero: 64.
	MaxIdleConnsPerHost int
	// Correlation says which header carries the correlation ID (X-Request-ID
	// is honoured when it is absent). Zero: X-Correlation-ID.
	Correlation propagation.Correlation
	// SerialInference, when true, parents an outbound call that carries
	// neither a traceparent nor a known correlation ID under the inbound
	// request in flight, when exactly one is. Zero: off.
	SerialInference bool
	// FailureStatuses are the destination statuses the circuit breaker
	// counts as failures. Nil: proxy.DefaultFailureStatuses (500, 502, 503,
	// 504); 429 is not among them.
	FailureStatuses []int
	// Breaker configures the per-destination circuit breakers when
	// Deps.Breakers is nil. Zero: breaker's defaults.
	Breaker breaker.Settings
	// MaxBreakers bounds the number of per-destination breakers when
	// Deps.Breakers is nil. Zero: breaker's default (1024).
	MaxBreakers int
	// DisableBreaker turns circuit breaking off: every admitted request is
	// sent, whatever the destination's recent failures. Zero: on.
	DisableBreaker bool
	// AccessLog writes one log line per request and per tunnel when true.
	AccessLog bool
}

// Deps are the collaborators of the proxy, passed in rather than taken from
// globals. Nil fields mean: no-op tracing, the strict W3C propagator,
// slog.Default(), no metrics, no stitching (every span without a traceparent
// is a new root), breakers built from Settings.Breaker with no observer
// (none at all with Settings.DisableBreaker).
type Deps struct {
	TracerProvider trace.TracerProvider
	Propagator     otelprop.TextMapPropagator
	// Logger should be a proxy.NewLogHandler logger so that log lines carry
	// trace_id, span_id and correlation_id.
	Logger  *slog.Logger
	Metrics *Metrics
	// Stitch is the inbound side's registry of requests by correlation ID.
	Stitch *stitch.Registry
	// Breakers holds one breaker per destination host:port, keyed that way.
	Breakers *breaker.Set
	// BreakerObserver receives transitions and rejections of the breakers
	// built when Breakers is nil (breaker.Metrics implements it).
	BreakerObserver breaker.Observer
}

// ErrBadSettings is wrapped by New for settings it cannot use.
var ErrBadSettings = errors.New("egress: bad settings")

func (s *Settings) applyDefaults() error {
	if s.MaxConcurrent < 0 {
		return fmt.Errorf("%w: MaxConcurrent %d is negative", ErrBadSettings, s.MaxConcurrent)
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = DefaultMaxConcurrent
	}
	switch {
	case s.RequestTimeout == 0:
		s.RequestTimeout = DefaultRequestTimeout
	case s.RequestTimeout < 0:
		s.RequestTimeout = 0
	}
	if s.DialTimeout <= 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	if s.TLSHandshakeTimeout <= 0 {
		s.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	switch {
	case s.ResponseHeaderTimeout == 0:
		s.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	case s.ResponseHeaderTimeout < 0:
		s.ResponseHeaderTimeout = 0
	}
	if s.IdleConnTimeout <= 0 {
		s.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if s.MaxIdleConnsPerHost <= 0 {
		s.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if s.Correlation.Header == "" {
		s.Correlation = propagation.NewCorrelation("", s.Correlation.MaxLen)
	}
	if s.FailureStatuses == nil {
		s.FailureStatuses = proxy.DefaultFailureStatuses
	}
	return nil
}

func (d *Deps) applyDefaults(s *Settings) {
	if d.TracerProvider == nil {
		d.TracerProvider = noop.NewTracerProvider()
	}
	if d.Propagator == nil {
		d.Propagator = propagation.TraceContext{}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if s.DisableBreaker {
		d.Breakers = nil
	} else if d.Breakers == nil {
		d.Breakers = breaker.NewSet(s.Breaker, d.BreakerObserver, s.MaxBreakers)
	}
}
