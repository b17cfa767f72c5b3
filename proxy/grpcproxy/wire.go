package grpcproxy

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// gRPC over HTTP/2 header names, canonical for http.Header lookups
// (grpc/doc/PROTOCOL-HTTP2.md).
const (
	headerContentType = "Content-Type"
	headerGRPCStatus  = "Grpc-Status"
	headerGRPCMessage = "Grpc-Message"
	headerPushback    = "Grpc-Retry-Pushback-Ms"
)

// maxCode is the highest status code gRPC defines.
const maxCode = codes.Unauthenticated

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
