package grpcproxy

import (
	"fmt"
	"net"
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
	headerPushback      = "Grpc-Retry-Pushback-Ms"
	contentTypeGRPC     = "application/grpc"
)

// maxCode is the highest status code gRPC defines.
const maxCode = codes.Unauthenticated

// isGRPC reports whether r is a gRPC call: HTTP/2 (gRPC has no HTTP/1
// mapping) with a Content-Type of application/grpc, optionally followed by
// "+subtype" or parameters (PROTOCOL-HTTP2.md: Content-Type →
// "application/grpc" [("+proto" / "+json" / {custom})]).
func isGRPC(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	ct := r.Header[headerContentType]
	if len(ct) != 1 {
		return false
	}
	const p = contentTypeGRPC
	// Media types are case-insensitive (RFC 9110 §8.3.1).
	if len(ct[0]) < len(p) || !strings.EqualFold(ct[0][:len(p)], p) {
		return false
	}
	rest := ct[0][len(p):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// destination splits a call's :authority into a lower-case host, its port
// and the "host:port" that keys its breaker. The port is required: the
// sidecar cannot guess which port the app meant.
func destination(authority string) (host string, port uint16, key string, err error) {
	h, ps, err := net.SplitHostPort(authority)
	if err != nil || h == "" {
		return "", 0, "", fmt.Errorf("bad destination %q in :authority: want host:port (grpc.WithAuthority)", authority)
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || n == 0 {
		return "", 0, "", fmt.Errorf("bad destination %q in :authority: want a port 1-65535", authority)
	}
	host = strings.ToLower(h)
	return host, uint16(n), net.JoinHostPort(host, ps), nil
}

// writeStatus ends a call tracecar itself must fail as a Trailers-Only
// response: HTTP status 200, as PROTOCOL-HTTP2.md requires of a gRPC
// response, with the outcome in grpc-status and grpc-message. Headers
// already set on w go out in the same frame.
func writeStatus(w http.ResponseWriter, code codes.Code, msg string) {
	h := w.Header()
	h.Set(headerContentType, contentTypeGRPC)
	h.Set(headerGRPCStatus, strconv.FormatUint(uint64(code), 10))
	h.Set(headerGRPCMessage, encodeGRPCMessage(msg))
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

// parseGRPCStatus parses a grpc-status value: a non-negative decimal integer
// (PROTOCOL-HTTP2.md: Status → "grpc-status" 1*DIGIT).
func parseGRPCStatus(s string) (codes.Code, bool) {
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

// codeName is the canonical name of c, or its number for a code gRPC does
// not define.
func codeName(c codes.Code) string {
	if int(c) < len(grpcCodeName) {
		return grpcCodeName[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}
