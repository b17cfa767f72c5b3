package proxy

import (
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// gRPC over HTTP/2 header names, canonical for http.Header lookups
// (grpc/doc/PROTOCOL-HTTP2.md).
const (
	headerContentType   = "Content-Type"
	headerContentLength = "Content-Length"
	headerGRPCStatus    = "Grpc-Status"
	headerGRPCMessage   = "Grpc-Message"
	contentTypeGRPC     = "application/grpc"
)

// IsGRPC reports whether r is a gRPC call: HTTP/2 (gRPC has no HTTP/1
// mapping) with a Content-Type of application/grpc, optionally followed by
// "+subtype" or parameters (PROTOCOL-HTTP2.md: Content-Type →
// "application/grpc" [("+proto" / "+json" / {custom})]). gRPC-Web
// ("application/grpc-web") is not gRPC on the wire and stays plain HTTP.
// It does not allocate: plain HTTP requests pay one integer comparison.
func IsGRPC(r *http.Request) bool {
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

// GRPCMethod returns the fully-qualified method ("pkg.Service/Method") named
// by a gRPC :path ("/pkg.Service/Method"), and false when path is not of
// that form.
func GRPCMethod(path string) (string, bool) {
	if len(path) < 4 || path[0] != '/' {
		return "", false
	}
	m := path[1:]
	i := strings.IndexByte(m, '/')
	if i <= 0 || i == len(m)-1 || strings.IndexByte(m[i+1:], '/') >= 0 {
		return "", false
	}
	return m, true
}

// ParseGRPCStatus parses a grpc-status value: a non-negative decimal integer
// (PROTOCOL-HTTP2.md: Status → "grpc-status" 1*DIGIT) that fits in 32 bits.
func ParseGRPCStatus(s string) (codes.Code, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<32-1 {
		return 0, false
	}
	return codes.Code(n), true
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

// GRPCCodeName is the canonical name of c (grpc/doc/statuscodes.md, the
// form rpc.response.status_code takes), or its number for a code gRPC does
// not define.
func GRPCCodeName(c codes.Code) string {
	if int(c) < len(grpcCodeName) {
		return grpcCodeName[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}

// HTTPStatusToGRPC is gRPC's mapping of an HTTP status that came without a
// grpc-status (grpc/doc/http-grpc-status-mapping.md). A 200 without one is a
// stream the server broke off: grpc-go reports it as INTERNAL.
func HTTPStatusToGRPC(status int) codes.Code {
	switch status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	case http.StatusOK, http.StatusBadRequest:
		return codes.Internal
	default:
		return codes.Unknown
	}
}

// GRPCToHTTPStatus is the HTTP status that corresponds to a gRPC status
// (google.rpc.Code, "HTTP Mapping"), so that settings written
// as HTTP statuses (Idempotency-Key release statuses) speak for gRPC calls too: 429 is RESOURCE_EXHAUSTED, 503 is UNAVAILABLE.
// (The reverse direction, HTTPStatusToGRPC, is gRPC's reading of an
// HTTP answer without grpc-status, where 429 becomes UNAVAILABLE; that is a
// transport failure, not what an app means by its status.)
func GRPCToHTTPStatus(code codes.Code) int {
	switch code {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return StatusClientClosedRequest
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss and codes gRPC does not define
		return http.StatusInternalServerError
	}
}

// EncodeGRPCMessage percent-encodes a status message as PROTOCOL-HTTP2.md
// requires: bytes outside printable ASCII (0x20–0x7E) and '%' itself become
// %XX; the rest is sent as is.
func EncodeGRPCMessage(msg string) string {
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

// WriteGRPCError ends a gRPC call that tracecar itself must fail as a
// Trailers-Only response: gRPC clients read the status from grpc-status and
// cannot read a problem body. HTTP status 200 is what PROTOCOL-HTTP2.md
// requires of a gRPC response; the outcome is in grpc-status and
// grpc-message (msg, percent-encoded). Headers already set on w (the
// correlation ID, traceresponse) go out in the same frame.
func WriteGRPCError(w http.ResponseWriter, code codes.Code, msg string) {
	h := w.Header()
	h.Set(headerContentType, contentTypeGRPC)
	h.Set(headerGRPCStatus, strconv.FormatUint(uint64(code), 10))
	h.Set(headerGRPCMessage, EncodeGRPCMessage(msg))
	h.Del(headerContentLength)
	w.WriteHeader(http.StatusOK)
}

// EndGRPCStream ends a gRPC response whose headers already went out with the
// status code and msg as trailers (PROTOCOL-HTTP2.md: Trailers), once the
// handler returns. Bytes of a message the response was in the middle of are
// not completed: the client reports the status, or a truncated message.
func EndGRPCStream(w http.ResponseWriter, code codes.Code, msg string) {
	h := w.Header()
	h.Set(http.TrailerPrefix+headerGRPCStatus, strconv.FormatUint(uint64(code), 10))
	h.Set(http.TrailerPrefix+headerGRPCMessage, EncodeGRPCMessage(msg))
}
