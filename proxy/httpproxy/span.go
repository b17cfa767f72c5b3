package httpproxy

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprop "go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
)

// WebSocket attributes: the semantic conventions define none, so they live
// under the tracecar namespace.
const (
	attrWSBytesIn     = attribute.Key("tracecar.websocket.client.bytes")
	attrWSBytesOut    = attribute.Key("tracecar.websocket.server.bytes")
	attrWSMessagesIn  = attribute.Key("tracecar.websocket.client.messages")
	attrWSMessagesOut = attribute.Key("tracecar.websocket.server.messages")
	attrWSCloseCode   = attribute.Key("tracecar.websocket.close_code")
	attrWSCloseBy     = attribute.Key("tracecar.websocket.closed_by")
)

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// startSpan extracts the caller's context, starts the SERVER span and settles
// the correlation ID (the caller's when valid, else minted from the trace ID).
// own reports whether the span has an identity of its own: a no-op tracer
// (SDK disabled) hands back the caller's span context instead.
func (h *Handler) startSpan(r *http.Request, start time.Time) (ctx context.Context, span trace.Span, cid string, own bool) {
	ctx = h.prop.Extract(r.Context(), otelprop.HeaderCarrier(r.Header))
	remote := trace.SpanContextFromContext(ctx)
	grpc := proxy.IsGRPC(r)
	known := proxy.KnownMethod(r.Method)
	switch {
	case grpc:
		// otelgrpc's stats handler starts a gRPC call's span, as it would in
		// a grpc-go server (edge mode is its public-endpoint option).
		ctx = h.grpcStats.Begin(ctx, r.URL.Path, start)
		span = trace.SpanFromContext(ctx)
	case h.settings.Edge && remote.IsValid():
		// Edge mode: do not continue an untrusted trace; start a new one and
		// link the caller's span so the hop stays navigable.
		ctx, span = h.tracer.Start(ctx, spanName(r.Method, known), serverKind, trace.WithNewRoot(),
			trace.WithLinks(trace.Link{SpanContext: remote}))
	default:
		ctx, span = h.tracer.Start(ctx, spanName(r.Method, known), serverKind)
	}
	cid, ok := h.settings.Correlation.Extract(otelprop.HeaderCarrier(r.Header))
	if !ok {
		cid = propagation.MintCorrelationID(span.SpanContext().TraceID())
	}
	switch {
	case !span.IsRecording():
	case grpc:
		setGRPCRequestAttributes(span, r, cid)
	default:
		setRequestAttributes(span, r, known, cid)
	}
	sc := span.SpanContext()
	return ctx, span, cid, sc.IsValid() && sc.SpanID() != remote.SpanID()
}

// spanName is an HTTP SERVER span's name: the method, or "HTTP" for a
// method the conventions do not know.
func spanName(method string, known bool) string {
	if known {
		return method
	}
	return "HTTP"
}

// setRequestAttributes records the HTTP server span attributes of the OTel
// semantic conventions (v1.43.0, HTTP server span).
func setRequestAttributes(span trace.Span, r *http.Request, knownMethod bool, cid string) {
	attrs := make([]attribute.KeyValue, 0, 12)
	if knownMethod {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(r.Method))
	} else {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String("_OTHER"),
			semconv.HTTPRequestMethodOriginalKey.String(r.Method))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs,
		semconv.URLPathKey.String(r.URL.Path),
		semconv.URLSchemeKey.String(scheme),
		protocolVersion(r),
		propagation.AttrCorrelationID.String(cid),
	)
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, semconv.ServerAddressKey.String(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPortKey.Int(p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, semconv.ServerAddressKey.String(r.Host))
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddressKey.String(host), semconv.NetworkPeerAddressKey.String(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.NetworkPeerPortKey.Int(p))
		}
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginalKey.String(ua))
	}
	span.SetAttributes(attrs...)
}

var (
	protoHTTP11 = semconv.NetworkProtocolVersionKey.String("1.1")
	protoHTTP2  = semconv.NetworkProtocolVersionKey.String("2")
	protoHTTP10 = semconv.NetworkProtocolVersionKey.String("1.0")
)

func protocolVersion(r *http.Request) attribute.KeyValue {
	switch {
	case r.ProtoMajor == 2:
		return protoHTTP2
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return protoHTTP10
	default:
		return protoHTTP11
	}
}

// endSpan records the outcome and ends the span. Per the semantic
// conventions, a server span's status is Error for 5xx only; 4xx are the
// client's errors and leave it unset.
func (h *Handler) endSpan(span trace.Span, rw *responseWriter, status int) {
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(status),
			semconv.HTTPResponseBodySizeKey.Int64(rw.bytes))
		if ws := rw.ws; ws != nil {
			in, out := ws.In(), ws.Out()
			span.SetAttributes(
				attrWSBytesIn.Int64(in.Bytes), attrWSBytesOut.Int64(out.Bytes),
				attrWSMessagesIn.Int64(in.Messages), attrWSMessagesOut.Int64(out.Messages),
			)
			switch {
			case in.CloseCode != 0:
				span.SetAttributes(attrWSCloseCode.Int(in.CloseCode), attrWSCloseBy.String("client"))
			case out.CloseCode != 0:
				span.SetAttributes(attrWSCloseCode.Int(out.CloseCode), attrWSCloseBy.String("server"))
			}
		}
		switch {
		case rw.err != nil:
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(rw.err)))
			if status >= 500 {
				span.SetStatus(codes.Error, rw.err.Error())
			}
		case status >= 500:
			span.SetAttributes(semconv.ErrorTypeKey.String(statusText(status)))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}
