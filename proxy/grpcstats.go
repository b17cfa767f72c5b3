package proxy

import (
	"context"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// GRPCStats records the span of a gRPC call that tracecar relays as bytes,
// through otelgrpc's stats handler: the handler a grpc-go server or client
// would be given (grpc.StatsHandler), driven here with the events grpc-go
// would report for the call. The span's name, kind, rpc.* attributes and
// status are therefore otelgrpc's, and follow it
// (OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup or rpc/old selects its older
// conventions); tracecar adds its own attributes and the per-message events
// (otelgrpc v0.72.0 records none) to the span it starts. otelgrpc's
// rpc.{server,client}.call.duration histogram goes to
// GRPCStatsOptions.MeterProvider, none by default: the sidecar's metrics are
// its Prometheus ones.
//
// otelgrpc's own propagation is off: the caller extracts and injects trace
// context with tracecar's strict W3C propagator, so a gRPC call honours the
// same rules as an HTTP one.
type GRPCStats struct {
	h      stats.Handler
	client bool
}

// noPropagation is the TextMapPropagator given to otelgrpc: extraction and
// injection are tracecar's.
var noPropagation = otelprop.NewCompositeTextMapPropagator()

// GRPCStatsOptions configure a GRPCStats.
type GRPCStatsOptions struct {
	TracerProvider trace.TracerProvider
	// MeterProvider receives otelgrpc's duration histogram; nil: none.
	MeterProvider metric.MeterProvider
	// NewRoot starts every SERVER span in a trace of its own, linked to the
	// caller's span (otelgrpc.WithPublicEndpoint): edge mode.
	NewRoot bool
}

// NewGRPCServerStats records SERVER spans (otelgrpc.NewServerHandler).
func NewGRPCServerStats(o GRPCStatsOptions) GRPCStats {
	opts := o.options()
	if o.NewRoot {
		opts = append(opts, otelgrpc.WithPublicEndpoint())
	}
	return GRPCStats{h: otelgrpc.NewServerHandler(opts...)}
}

// NewGRPCClientStats records CLIENT spans (otelgrpc.NewClientHandler).
func NewGRPCClientStats(o GRPCStatsOptions) GRPCStats {
	return GRPCStats{h: otelgrpc.NewClientHandler(o.options()...), client: true}
}

func (o GRPCStatsOptions) options() []otelgrpc.Option {
	opts := []otelgrpc.Option{
		otelgrpc.WithPropagators(noPropagation),
		otelgrpc.WithTracerProvider(o.TracerProvider),
	}
	mp := o.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	return append(opts, otelgrpc.WithMeterProvider(mp))
}

// Begin starts the span of a call to fullMethod (the :path,
// "/package.Service/Method"). ctx carries the parent: the caller's span
// context for a SERVER span, the resolved parent for a CLIENT one. The span
// is trace.SpanFromContext of the returned context, which End needs.
func (s GRPCStats) Begin(ctx context.Context, fullMethod string, at time.Time) context.Context {
	ctx = s.h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: fullMethod})
	s.h.HandleRPC(ctx, &stats.Begin{Client: s.client, BeginTime: at})
	return ctx
}

// End reports the call's status and ends its span. msg is the status
// message (grpc-message, percent-decoded); it becomes the span status
// description when the code is an error for this side of the call.
func (s GRPCStats) End(ctx context.Context, begin time.Time, code codes.Code, msg string) {
	var err error
	if code != codes.OK {
		err = status.Error(code, msg)
	}
	s.h.HandleRPC(ctx, &stats.End{Client: s.client, BeginTime: begin, EndTime: time.Now(), Error: err})
}
