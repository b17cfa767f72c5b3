package grpcproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// Defaults applied by New and NewServer to zero fields.
const (
	DefaultAddr            = "127.0.0.1:15002"
	DefaultDialTimeout     = 5 * time.Second
	DefaultIdleConnTimeout = 90 * time.Second
)

// DefaultFailureCodes are the grpc-status values the circuit breaker counts
// as failures. RESOURCE_EXHAUSTED is absent on purpose (a rate-limited
// destination is healthy and asking for less), as is CANCELLED (the caller
// gave up; that says nothing about the destination).
var DefaultFailureCodes = []codes.Code{codes.Unavailable, codes.DeadlineExceeded}

// ErrBadSettings is wrapped by New for settings it cannot use.
var ErrBadSettings = errors.New("grpcproxy: bad settings")

// Settings configure the outbound gRPC proxy. Zero values mean the
// documented defaults.
type Settings struct {
	// Allow says whether a destination may be called. Nil: any destination.
	// A denied call ends with PERMISSION_DENIED naming the destination.
	Allow func(host string, port uint16) bool
	// DialTimeout bounds connecting to a destination; exceeded →
	// UNAVAILABLE. Zero: 5s.
	DialTimeout time.Duration
	// Correlation says which metadata key carries the correlation ID
	// (x-request-id is honoured when it is absent). Zero: x-correlation-id.
	Correlation propagation.Correlation
	// SerialInference, when true, parents a call that carries neither a
	// traceparent nor a known correlation ID under the inbound request in
	// flight, when exactly one is. Zero: off.
	SerialInference bool
	// FailureCodes are the grpc-status values the circuit breaker counts as
	// failures. Nil: DefaultFailureCodes (UNAVAILABLE, DEADLINE_EXCEEDED).
	// CANCELLED and RESOURCE_EXHAUSTED are refused: they never count.
	FailureCodes []codes.Code
	// TLS dials destinations over TLS (HTTP/2 negotiated by ALPN, the
	// system roots verify them). Zero: h2c, HTTP/2 with prior knowledge.
	TLS bool
}

// Deps are the collaborators of the proxy. Nil fields mean: no-op tracing,
// the strict W3C propagator, slog.Default(), no stitching (a call without a
// traceparent starts a new trace unless serial inference finds a parent)
// and no circuit breaking.
type Deps struct {
	TracerProvider trace.TracerProvider
	Propagator     otelprop.TextMapPropagator
	// Logger should be a proxy.NewLogHandler logger so that log lines carry
	// trace_id, span_id and correlation_id.
	Logger *slog.Logger
	// Stitch is the inbound side's registry of requests by correlation ID.
	Stitch *stitch.Registry
	// Breakers holds one breaker per destination, keyed "host:port". Share
	// it with the HTTP egress proxy so that one destination has one breaker.
	Breakers *breaker.Set
}

func (s *Settings) applyDefaults() error {
	if s.DialTimeout < 0 {
		return fmt.Errorf("%w: DialTimeout %v is negative", ErrBadSettings, s.DialTimeout)
	}
	if s.DialTimeout == 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	if s.Correlation.Header == "" {
		s.Correlation = propagation.NewCorrelation("", s.Correlation.MaxLen)
	}
	if s.FailureCodes == nil {
		s.FailureCodes = DefaultFailureCodes
	}
	for _, c := range s.FailureCodes {
		switch {
		case c == codes.OK:
			return fmt.Errorf("%w: FailureCodes: OK is not a failure", ErrBadSettings)
		case c == codes.Canceled, c == codes.ResourceExhausted:
			return fmt.Errorf("%w: FailureCodes: %s never counts as a failure", ErrBadSettings, proxy.GRPCCodeName(c))
		case c > maxCode:
			return fmt.Errorf("%w: FailureCodes: %d is not a gRPC status code", ErrBadSettings, uint32(c))
		}
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

// NewServer returns the egress gRPC listener for h: h2c only (gRPC clients
// speak HTTP/2 with prior knowledge), on 127.0.0.1:15002 unless s.Addr says
// otherwise — loopback, since anything that reaches it can call out.
func NewServer(s proxy.ServerSettings, h http.Handler) *http.Server {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return proxy.NewServer(s, DefaultAddr, &p, h)
}
