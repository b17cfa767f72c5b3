package httpproxy

import (
	"net"
	"net/http"
	"time"

	"github.com/tracecar/tracecar/proxy"
)

// gRPC over HTTP/2 header names, canonical for http.Header lookups
// (grpc/doc/PROTOCOL-HTTP2.md).
const (
	headerGRPCStatus  = "Grpc-Status"
	headerGRPCMessage = "Grpc-Message"
)

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
	if proxy.IsGRPC(r) {
		return t.grpc.RoundTrip(r)
	}
	return t.http.RoundTrip(r)
}

// writeGRPCError ends a gRPC call that tracecar itself must fail (the app
// is unreachable, timed out, or the breaker is open) as a Trailers-Only
// response with the gRPC status of err (proxy.WriteGRPCError).
func writeGRPCError(w http.ResponseWriter, err error, upstream string) {
	proxy.WriteGRPCError(w, proxy.GRPCCode(err), "tracecar: upstream "+upstream+": "+err.Error())
}
