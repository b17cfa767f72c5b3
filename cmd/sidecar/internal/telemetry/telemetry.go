// Package telemetry wires the OpenTelemetry SDK for the sidecar: the
// resource, the OTLP trace exporter (gRPC or HTTP/protobuf), the sampler
// (OTEL_TRACES_SAMPLER, read by the SDK itself), a bounded batch span
// processor with Prometheus metrics for dropped spans, and the propagator
// named by OTEL_PROPAGATORS.
//
// Only cmd/sidecar uses this package; the proxy packages receive the
// resulting trace.TracerProvider and propagation.TextMapPropagator.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Protocols accepted in Settings.Protocol, as spelled in
// OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Defaults applied to zero Settings fields; the same as the OTel SDK's
// OTEL_BSP_* defaults.
const (
	DefaultQueueSize      = 2048
	DefaultBatchSize      = 512
	DefaultExportInterval = 5 * time.Second
	DefaultExportTimeout  = 30 * time.Second
)

// ErrProtocol is returned by Setup for a protocol other than grpc or
// http/protobuf.
var ErrProtocol = errors.New("unsupported OTLP protocol")

// Settings configures Setup. Zero (or negative) fields take the documented
// defaults.
// Everything not here (endpoint, headers, TLS, compression, sampler, service
// name, resource attributes) is read by the OTel SDK from the standard
// OTEL_* environment variables.
type Settings struct {
	// ServiceVersion is the build version, recorded as the service.version
	// resource attribute. Empty records none.
	ServiceVersion string
	// Protocol is the OTLP transport: "grpc" or "http/protobuf". Empty means
	// http/protobuf, the OTel specification's default.
	Protocol string
	// Disabled (OTEL_SDK_DISABLED=true) installs a no-op tracer provider:
	// spans are not recorded, nothing is exported and no span metrics are
	// registered.
	Disabled bool
	// QueueSize bounds the spans waiting for export. Default 2048.
	QueueSize int
	// BatchSize is the most spans sent in one export. Default 512; never
	// more than QueueSize.
	BatchSize int
	// ExportInterval is the longest a partial batch waits before it is
	// exported. Default 5s.
	ExportInterval time.Duration
	// ExportTimeout bounds one export, retries included. Default 30s. The
	// exporter's own OTEL_EXPORTER_OTLP_TIMEOUT (default 10s) also applies.
	ExportTimeout time.Duration
	// Logger receives dropped-span warnings and OTel SDK errors. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the span pipeline's metrics. Nil registers none.
	Registerer prometheus.Registerer
	// Now is the clock of the log rate limits. Default time.Now.
	Now func() time.Time
}

// Telemetry is the configured SDK. Shutdown flushes it.
type Telemetry struct {
	// TracerProvider creates the sidecar's tracers. It is a no-op provider
	// when Settings.Disabled is set.
	TracerProvider trace.TracerProvider

	sdk *sdktrace.TracerProvider // nil when disabled
}

// Setup builds the resource, the OTLP exporter and the tracer provider, and
// routes OTel SDK errors to the logger (rate-limited). It does not touch the
// collector: an unreachable collector shows up later as dropped spans, never
// as a Setup error or a blocked start-up. It does not set the OTel globals
// for tracer provider and propagator; the caller does.
func Setup(ctx context.Context, s Settings) (*Telemetry, error) {
	s = s.withDefaults()
	otel.SetErrorHandler(newErrorHandler(s.Logger, s.Now))
	if s.Disabled {
		return &Telemetry{TracerProvider: noop.NewTracerProvider()}, nil
	}

	res, err := newResource(ctx, s.ServiceVersion)
	if err != nil {
		return nil, err
	}
	exporter, err := newExporter(ctx, s.Protocol)
	if err != nil {
		return nil, err
	}
	p := newProcessor(exporter, processorConfig{
		queueSize: s.QueueSize,
		batchSize: s.BatchSize,
		interval:  s.ExportInterval,
		timeout:   s.ExportTimeout,
		logger:    s.Logger,
		now:       s.Now,
	})
	if err := p.register(s.Registerer); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: registering span metrics: %w", err), p.Shutdown(ctx))
	}
	// No WithSampler: NewTracerProvider applies OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG itself, and defaults to parentbased_always_on
	// as the OTel specification requires.
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(p),
	)
	return &Telemetry{TracerProvider: sdk, sdk: sdk}, nil
}

// Shutdown exports the queued spans, bounded by ctx, then shuts the exporter
// down. Spans ended after Shutdown are discarded.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

func (s Settings) withDefaults() Settings {
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTPProtobuf
	}
	if s.QueueSize <= 0 {
		s.QueueSize = DefaultQueueSize
	}
	if s.BatchSize <= 0 {
		s.BatchSize = DefaultBatchSize
	}
	s.BatchSize = min(s.BatchSize, s.QueueSize)
	if s.ExportInterval <= 0 {
		s.ExportInterval = DefaultExportInterval
	}
	if s.ExportTimeout <= 0 {
		s.ExportTimeout = DefaultExportTimeout
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// newResource describes the sidecar process. Later detectors win, so
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the detected
// defaults, and the build version overrides the environment ("the user
// provided resource information has higher priority", OTel resource SDK
// specification).
func newResource(ctx context.Context, version string) (*resource.Resource, error) {
	if _, err := resource.New(ctx, resource.WithFromEnv()); err != nil {
		return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME: %w", err)
	}
	opts := []resource.Option{
		// service.name unknown_service:<executable> (the SDK's default when
		// OTEL_SERVICE_NAME is unset) and a random service.instance.id.
		resource.WithService(),
		resource.WithHost(),
		// Cheap process attributes only: no command line (it may carry
		// secrets) and no owner lookup.
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	}
	if version != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: building the resource: %w", err)
	}
	return res, nil
}

// transportEnv lists the variables that choose the OTLP endpoint or its
// transport security. When none is set, the Go exporters fall back to
// localhost:4317 (gRPC) and localhost:4318 (HTTP) over TLS, while the OTel
// specification defines the defaults as http://localhost:4317 and
// http://localhost:4318, plain text; see insecureByDefault.
var transportEnv = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
}

// insecureByDefault reports whether the exporter must be told to use plain
// text because the specification's default endpoint applies: no endpoint and
// no TLS setting in the environment. With an endpoint set, the exporters
// follow its scheme themselves (http:// is plain text, https:// is TLS).
func insecureByDefault() bool {
	for _, name := range transportEnv {
		if _, ok := os.LookupEnv(name); ok {
			return false
		}
	}
	return true
}

// newExporter creates the OTLP exporter for protocol: tracecar's span
// encoding (exporter) over the OTLP exporter's client for that protocol.
// The clients read OTEL_EXPORTER_OTLP_* (endpoint, headers, TLS,
// compression, timeout) themselves. Neither connects here: the HTTP client
// dials per export and the gRPC client (grpc.NewClient) connects lazily.
func newExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	insecure := insecureByDefault()
	var client otlptrace.Client
	switch protocol {
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		client = otlptracegrpc.NewClient(opts...)
	case ProtocolHTTPProtobuf:
		// Protobuf always: the protocol was decided by the caller, and only
		// the binary encoding carries the pre-encoded spans (exporter).
		opts := []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf)}
		if insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		client = otlptracehttp.NewClient(opts...)
	default:
		return nil, fmt.Errorf("telemetry: %w %q (accepted: %s, %s)", ErrProtocol, protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	}
	exp, err := newOTLPExporter(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("telemetry: starting the OTLP %s exporter: %w", protocol, err)
	}
	return exp, nil
}
