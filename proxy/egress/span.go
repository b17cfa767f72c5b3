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

// origin is how a client span found its parent, and the correlation ID the
// outgoing request carries.
type origin struct {
	source string // a proxy.Parent* value
	cid    string // the correlation ID, "" when none is known
	setCID bool   // cid was inferred and must be added to the request
}

// resolveParent finds the parent of the client span for an outbound request,
// in this order: a valid traceparent on the request ("propagated"); a
// correlation ID (the configured header, else X-Request-ID) of an inbound
// request the stitch registry remembers ("correlation_id", parented under
// that inbound request's server span); with serial inference on, the only
// inbound request in flight ("inferred"); else none, and the span starts a
// new trace.
func (p *Proxy) resolveParent(r *http.Request) (context.Context, origin) {
	h := otelprop.HeaderCarrier(r.Header)
	ctx := p.prop.Extract(r.Context(), h)
	cid, res := p.settings.Correlation.Lookup(h)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		o := origin{source: proxy.ParentPropagated, cid: cid}
		if p.stitch != nil && res == propagation.CorrelationAbsent {
			// The app forwarded its trace but not the correlation ID: the
			// inbound request of that trace still knows it.
			if e, ok := p.stitch.LookupTrace(sc.TraceID()); ok && e.CorrelationID != "" {
				o.cid, o.setCID = e.CorrelationID, true
			}
		}
		return ctx, o
	}
	if p.stitch != nil && res == propagation.CorrelationValid {
		if e, ok := p.stitch.Lookup(cid); ok && e.SpanContext.IsValid() {
			// The inbound server span lives in this process: a local parent,
			// so a parent-based sampler follows its decision.
			return trace.ContextWithSpanContext(ctx, e.SpanContext), origin{source: proxy.ParentCorrelationID, cid: cid}
		}
	}
	if p.settings.SerialInference && p.stitch != nil {
		if e, ok := p.stitch.Sole(); ok && e.SpanContext.IsValid() {
			o := origin{source: proxy.ParentInferred, cid: cid}
			if res == propagation.CorrelationAbsent && e.CorrelationID != "" {
				o.cid, o.setCID = e.CorrelationID, true
			}
			return trace.ContextWithSpanContext(ctx, e.SpanContext), o
		}
	}
	return ctx, origin{source: proxy.ParentNone, cid: cid}
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
func (p *Proxy) startSpan(ctx context.Context, r *http.Request, o origin, host string, port uint16) (context.Context, trace.Span) {
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
			proxy.AttrParentSource.String(o.source),
		)
		if r.Method != http.MethodConnect {
			attrs = append(attrs, semconv.URLFullKey.String(fullURL(r.URL)))
		}
		if o.cid != "" {
			attrs = append(attrs, propagation.AttrCorrelationID.String(o.cid))
		}
		span.SetAttributes(attrs...)
	}
	if o.cid != "" {
		ctx = propagation.ContextWithCorrelationID(ctx, o.cid)
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
