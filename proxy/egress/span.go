package egress

import (
	"context"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprop "go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
)

// Attributes the semantic conventions do not define, under the tracecar
// namespace.
const (
	attrBreakerState    = attribute.Key("tracecar.breaker.state")
	attrBreakerReason   = attribute.Key("tracecar.breaker.reason")
	attrTunnelSent      = attribute.Key("tracecar.tunnel.bytes_sent")
	attrTunnelReceived  = attribute.Key("tracecar.tunnel.bytes_received")
	attrTunnelEndReason = attribute.Key("tracecar.tunnel.end_reason")
)

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// resolveParent finds the parent of the CLIENT span (proxy.ParentResolver).
func (p *Proxy) resolveParent(r *http.Request) (context.Context, proxy.Parent) {
	return p.parents.Resolve(r.Context(), otelprop.HeaderCarrier(r.Header))
}

// spanName is "{method}" per the HTTP client span conventions (there is no
// url.template at a proxy), or "HTTP" for a method they do not know.
func spanName(method string) (string, bool) {
	if proxy.KnownMethod(method) {
		return method, true
	}
	return "HTTP", false
}

// startSpan starts the CLIENT span of an outbound request with its
// attributes (OTel semantic conventions v1.43.0, HTTP client span).
func (p *Proxy) startSpan(ctx context.Context, r *http.Request, o proxy.Parent, host string, port uint16) (context.Context, trace.Span) {
	name, known := spanName(r.Method)
	ctx, span := p.tracer.Start(ctx, name, clientKind)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 9)
		if known {
			attrs = append(attrs, semconv.HTTPRequestMethodKey.String(r.Method))
		} else {
			attrs = append(attrs, semconv.HTTPRequestMethodKey.String("_OTHER"),
				semconv.HTTPRequestMethodOriginalKey.String(r.Method))
		}
		attrs = append(attrs,
			semconv.ServerAddressKey.String(host),
			semconv.ServerPortKey.Int(int(port)),
			proxy.AttrParentSource.String(o.Source),
		)
		if r.Method != http.MethodConnect {
			attrs = append(attrs, semconv.URLFullKey.String(fullURL(r.URL)))
		}
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

// fullURL is url.full without credentials (semconv: url.full "MUST NOT
// contain credentials") and without the query string, which often carries
// tokens and signatures, and the fragment, which is never sent.
func fullURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// endSpan records the outcome of a plain-HTTP exchange. For CLIENT spans the
// HTTP semantic conventions say 4xx SHOULD and 5xx MUST set status Error.
func endSpan(span trace.Span, status, protoMajor, protoMinor int, err error) {
	if span.IsRecording() {
		if status > 0 { // "http.response.status_code: if and only if one was received"
			span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(status))
			switch {
			case protoMajor == 2:
				span.SetAttributes(semconv.NetworkProtocolVersionKey.String("2"))
			case protoMajor == 1 && protoMinor == 0:
				span.SetAttributes(semconv.NetworkProtocolVersionKey.String("1.0"))
			default:
				span.SetAttributes(semconv.NetworkProtocolVersionKey.String("1.1"))
			}
		}
		switch {
		case err != nil:
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(err)))
			span.SetStatus(codes.Error, err.Error())
		case status >= 400:
			span.SetAttributes(semconv.ErrorTypeKey.String(statusText(status)))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}
