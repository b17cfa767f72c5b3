package grpcproxy

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelprop "go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
)

// Attributes the semantic conventions do not define, under the tracecar
// namespace.
const (
	attrBreakerState  = attribute.Key("tracecar.breaker.state")
	attrBreakerReason = attribute.Key("tracecar.breaker.reason")
)

// methodOther is rpc.method for a :path that names no method.
const methodOther = "_OTHER"

// resolveParent finds the parent of the CLIENT span (proxy.ParentResolver).
func (p *Proxy) resolveParent(r *http.Request) (context.Context, proxy.Parent) {
	return p.parents.Resolve(r.Context(), otelprop.HeaderCarrier(r.Header))
}

// startSpan starts the CLIENT span of a call through otelgrpc's client
// stats handler (proxy.GRPCStats), which names it "{rpc.method}" with
// rpc.system.name and rpc.method (semantic conventions v1.43.0, gRPC client
// span). tracecar renames it "grpc" ({rpc.system.name}) when the :path names
// no method, and adds the destination, the parent's source and the
// correlation ID.
func (p *Proxy) startSpan(ctx context.Context, r *http.Request, o proxy.Parent, host string, port uint16, start time.Time) (context.Context, trace.Span) {
	ctx = p.stats.Begin(ctx, r.URL.Path, start)
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 6)
		if _, known := proxy.GRPCMethod(r.URL.Path); !known {
			// rpc.method: "When the method is not recognized ... MUST be set
			// to _OTHER ... MUST also set rpc.method_original".
			span.SetName("grpc")
			attrs = append(attrs, semconv.RPCMethodKey.String(methodOther),
				semconv.RPCMethodOriginalKey.String(r.URL.Path))
		}
		attrs = append(attrs,
			semconv.ServerAddressKey.String(host),
			semconv.ServerPortKey.Int(int(port)),
			proxy.AttrParentSource.String(o.Source),
		)
		if o.CorrelationID != "" {
			attrs = append(attrs, propagation.AttrCorrelationID.String(o.CorrelationID))
		}
		span.SetAttributes(attrs...)
	}
	if o.CorrelationID != "" {
		ctx = propagation.ContextWithCorrelationID(ctx, o.CorrelationID)
	}
	return ctx, span
}

// endSpan records error.type and reports the call's end to otelgrpc, which
// sets rpc.response.status_code and the span status and ends the span. On a
// gRPC CLIENT span every status but OK is an error (semconv gRPC, "gRPC
// Status": for client spans, Error on any code but OK). error.type is
// tracecar's failure when it ended the call, else the status code's name
// ("If a response status code is returned and status indicates an error,
// error.type SHOULD be set to that status code").
func (p *Proxy) endSpan(ctx context.Context, start time.Time, code codes.Code, msg string, err error) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		switch {
		case err != nil:
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(err)))
		case code != codes.OK:
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.GRPCCodeName(code)))
		}
	}
	if err != nil {
		msg = err.Error()
	}
	p.stats.End(ctx, start, code, msg)
}
