package httpproxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/proxy"
)

// gRPC over HTTP/2 header names, canonical for http.Header lookups
// (grpc/doc/PROTOCOL-HTTP2.md).
const (
	headerContentType = "Content-Type"
	headerGRPCStatus  = "Grpc-Status"
	headerGRPCMessage = "Grpc-Message"
	contentTypeGRPC   = "application/grpc"
)

// isGRPC reports whether r is a gRPC call: HTTP/2 (gRPC has no HTTP/1
// mapping) with a Content-Type of application/grpc, optionally followed by
// "+subtype" or parameters (PROTOCOL-HTTP2.md: Content-Type →
// "application/grpc" [("+proto" / "+json" / {custom})]). gRPC-Web
// ("application/grpc-web") is not gRPC on the wire and stays plain HTTP.
func isGRPC(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	ct := r.Header[headerContentType]
	return len(ct) == 1 && isGRPCContentType(ct[0])
}

func isGRPCContentType(ct string) bool {
	const p = contentTypeGRPC
	// Media types are case-insensitive (RFC 9110 §8.3.1).
	if len(ct) < len(p) || !strings.EqualFold(ct[:len(p)], p) {
		return false
	}
	rest := ct[len(p):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// newGRPCTransport is the shared transport for gRPC calls: HTTP/2 only — with
// prior knowledge (h2c) to a plaintext app, over TLS to an https one — so
// every call is a stream on a multiplexed connection and trailers and
// full-duplex bodies pass. Dial and response-header bounds are those of the
// HTTP transport; once headers arrive a stream is not bounded (gRPC servers
// send headers before the first message, and the caller's grpc-timeout,
// forwarded untouched, is the deadline the app enforces).
func newGRPCTransport(s Settings) *http.Transport {
	dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
	var protocols http.Protocols
	if s.Upstream.Scheme == "https" {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		Protocols:             &protocols,
		MaxIdleConns:          s.MaxIdleConns,
		MaxIdleConnsPerHost:   s.MaxIdleConns,
		IdleConnTimeout:       s.IdleConnTimeout,
		ResponseHeaderTimeout: s.ResponseHeaderTimeout,
		DisableCompression:    true,
	}
}

// upstreamTransport sends gRPC calls over the HTTP/2 transport and everything
// else over the HTTP one. The choice costs plain HTTP/1 requests one integer
// comparison and no allocation.
type upstreamTransport struct {
	http, grpc *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t upstreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if isGRPC(r) {
		return t.grpc.RoundTrip(r)
	}
	return t.http.RoundTrip(r)
}

// writeGRPCError ends a gRPC call that tracecar itself must fail (the app
// is unreachable, timed out, or the breaker is open) as a Trailers-Only
// response: gRPC clients read the status from grpc-status and cannot read a
// problem body. HTTP status 200 is what PROTOCOL-HTTP2.md requires of a
// gRPC response; the outcome is in grpc-status. Headers already set on w
// (the correlation ID, traceresponse) go out in the same frame.
func writeGRPCError(w http.ResponseWriter, err error, upstream string) {
	h := w.Header()
	h.Set(headerContentType, contentTypeGRPC)
	h.Set(headerGRPCStatus, strconv.Itoa(int(proxy.GRPCCode(err))))
	h.Set(headerGRPCMessage, encodeGRPCMessage("tracecar: upstream "+upstream+": "+err.Error()))
	h.Del(headerContentLength)
	w.WriteHeader(http.StatusOK)
}

// encodeGRPCMessage percent-encodes a status message as PROTOCOL-HTTP2.md
// requires: bytes outside printable ASCII (0x20–0x7E) and '%' itself become
// %XX; the rest is sent as is.
func encodeGRPCMessage(msg string) string {
	n := 0
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			n++
		}
	}
	if n == 0 {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(msg) + 2*n)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcCodeName is the canonical name of each gRPC status code
// (grpc/doc/statuscodes.md), the form rpc.response.status_code takes.
var grpcCodeName = [...]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
	codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

// codeName is the canonical name of c, or its number for a code gRPC does
// not define.
func codeName(c codes.Code) string {
	if int(c) < len(grpcCodeName) {
		return grpcCodeName[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}
