package httpproxy

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
)

// A gRPC call's SERVER span is otelgrpc's (proxy.GRPCStats): named
// "{rpc.method}", with rpc.system.name "grpc", rpc.method the
// fully-qualified "service/method" taken from the :path, and
// rpc.response.status_code the canonical name of the call's gRPC status
// (semantic conventions v1.43.0, gRPC server span). tracecar adds the
// network, client and correlation attributes, error.type, and the rule for
// methods the app does not know.

// methodOther is rpc.method for a method the app does not recognise.
const methodOther = "_OTHER"

// trailerGRPCStatus is where ReverseProxy puts a grpc-status trailer the app
// did not announce in a Trailer header (always, for gRPC servers).
const trailerGRPCStatus = http.TrailerPrefix + headerGRPCStatus

var (
	protoNameHTTP   = semconv.NetworkProtocolNameKey.String("http")
	serverErrorCode = [...]bool{
		// rpc.response.status_code: "The following status codes SHOULD be
		// considered errors" for gRPC server spans; the others are the
		// caller's errors and get no error.type (otelgrpc leaves their
		// span status unset).
		codes.Unknown: true, codes.DeadlineExceeded: true, codes.Unimplemented: true,
		codes.Internal: true, codes.Unavailable: true, codes.DataLoss: true,
	}
)

// grpcSpanName is "{rpc.method}", or "{rpc.system.name}" when the path
// names no method (RPC spans, Name: the fallback when rpc.method is
// unavailable or _OTHER).
func grpcSpanName(path string) string {
	if m, ok := proxy.GRPCMethod(path); ok {
		return m
	}
	return "grpc"
}

// setGRPCRequestAttributes records the attributes known when the call
// starts.
func setGRPCRequestAttributes(span trace.Span, r *http.Request, cid string) {
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, protoNameHTTP, protoHTTP2, propagation.AttrCorrelationID.String(cid))
	if _, ok := proxy.GRPCMethod(r.URL.Path); !ok {
		// rpc.method: "When the method is not recognized ... MUST be set to
		// _OTHER ... MUST also set rpc.method_original". otelgrpc takes any
		// path for a method.
		span.SetName(grpcSpanName(r.URL.Path))
		attrs = append(attrs, semconv.RPCMethodKey.String(methodOther),
			semconv.RPCMethodOriginalKey.String(r.URL.Path))
	}
	attrs = appendHostPort(attrs, r.Host, semconv.ServerAddressKey, semconv.ServerPortKey)
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddressKey.String(host), semconv.NetworkPeerAddressKey.String(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.NetworkPeerPortKey.Int(p))
		}
	}
	span.SetAttributes(attrs...)
}

func appendHostPort(attrs []attribute.KeyValue, hostport string, hostKey, portKey attribute.Key) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if hostport != "" {
			attrs = append(attrs, hostKey.String(hostport))
		}
		return attrs
	}
	attrs = append(attrs, hostKey.String(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, portKey.Int(p))
	}
	return attrs
}

// grpcOutcome is the gRPC status of a finished call as the caller saw it:
// the app's grpc-status (a trailer, or a header of a Trailers-Only
// response), else the one tracecar answered or would have answered for the
// failure in rw.err, else gRPC's mapping of the HTTP status
// (grpc/doc/http-grpc-status-mapping.md). fromApp says the app chose it;
// msg is the grpc-message that came with it, when there was one.
func grpcOutcome(rw *responseWriter, status int) (code codes.Code, fromApp bool, msg string) {
	h := rw.Header()
	v, ok := h[headerGRPCStatus]
	m := h[headerGRPCMessage]
	if !ok {
		v, ok = h[trailerGRPCStatus]
		m = h[http.TrailerPrefix+headerGRPCMessage]
	}
	if len(m) > 0 {
		msg = m[0]
	}
	if ok && len(v) > 0 {
		if c, valid := proxy.ParseGRPCStatus(v[0]); valid {
			return c, rw.err == nil, msg
		}
		return codes.Unknown, rw.err == nil, msg
	}
	if rw.err != nil {
		return proxy.GRPCCode(rw.err), false, ""
	}
	return proxy.HTTPStatusToGRPC(status), true, ""
}

// endGRPCSpan adds tracecar's outcome attributes and reports the call's end
// to otelgrpc, which sets rpc.response.status_code and the span status (Error
// for the codes a server is to blame for) and ends the span.
func (h *Handler) endGRPCSpan(ctx context.Context, start time.Time, span trace.Span, r *http.Request, rw *responseWriter, status int) {
	code, fromApp, msg := grpcOutcome(rw, status)
	if d, err := url.PathUnescape(msg); err == nil {
		msg = d // grpc-message is percent-encoded (PROTOCOL-HTTP2.md)
	}
	if rw.err != nil {
		msg = rw.err.Error()
	}
	if span.IsRecording() {
		if m := rw.msgs; m != nil {
			if d := m.dropped(); d > 0 {
				span.SetAttributes(attrMessageEventsDropped.Int64(d))
			}
		}
		if fromApp && code == codes.Unimplemented {
			// The app does not know the method: the path is the caller's
			// choice and must not become a span name (rpc.method: MUST be
			// _OTHER when the method is not recognized).
			span.SetName("grpc")
			span.SetAttributes(semconv.RPCMethodKey.String(methodOther),
				semconv.RPCMethodOriginalKey.String(r.URL.Path))
		}
		switch {
		case rw.err != nil:
			// tracecar ended the call: its reason, whatever the code.
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(rw.err)))
		case int(code) < len(serverErrorCode) && serverErrorCode[code]:
			// error.type: "If a response status code is returned and status
			// indicates an error, error.type SHOULD be set to that status
			// code."
			span.SetAttributes(semconv.ErrorTypeKey.String(proxy.GRPCCodeName(code)))
		}
	}
	h.grpcStats.End(ctx, start, code, msg)
}
