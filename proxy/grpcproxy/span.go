package grpcproxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
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

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// resolveParent finds the parent of the CLIENT span (proxy.ParentResolver).
func (p *Proxy) resolveParent(r *http.Request) (context.Context, proxy.Parent) {
	return p.parents.Resolve(r.Context(), otelprop.HeaderCarrier(r.Header))
}

// startSpan starts the CLIENT span of a call (OTel semantic conventions
// v1.43.0, gRPC client span): named "{rpc.method}", or "grpc"
// ({rpc.system.name}) when the :path names no method.
func (p *Proxy) startSpan(ctx context.Context, r *http.Request, o proxy.Parent, host string, port uint16) (context.Context, trace.Span) {
	m, known := proxy.GRPCMethod(r.URL.Path)
	name := m
	if !known {
		name = "grpc"
	}
	ctx, span := p.tracer.Start(ctx, name, clientKind)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs, semconv.RPCSystemNameGRPC)
		if known {
			attrs = append(attrs, semconv.RPCMethodKey.String(m))
		} else {
			// rpc.method: "When the method is not recognized ... MUST be set
			// to _OTHER ... MUST also set rpc.method_original".
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

// endSpan records the call's final status and ends the span. On a gRPC
// CLIENT span every status but OK is an error (semconv gRPC, "gRPC Status":
// "the Span Status MUST be set to Error or remain unset depending on the
// gRPC status code and Span Kind"; for client spans, Error on any code but
// OK). error.type is
// tracecar's failure when it ended the call, else the status code's name
// ("If a response status code is returned and status indicates an error,
// error.type SHOULD be set to that status code").
func endSpan(span trace.Span, code codes.Code, err error) {
	if span.IsRecording() {
		name := proxy.GRPCCodeName(code)
		span.SetAttributes(semconv.RPCResponseStatusCodeKey.String(name))
		switch {
		case err != nil:
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(err)))
			span.SetStatus(otelcodes.Error, err.Error())
		case code != codes.OK:
			span.SetAttributes(semconv.ErrorTypeKey.String(name))
			span.SetStatus(otelcodes.Error, name)
		}
	}
	span.End()
}
