package httpproxy

import (
	"net/http"

	"github.com/tracecar/tracecar/proxy"
)

// DefaultAddr is the inbound listener's default address.
const DefaultAddr = ":15006"

// ServerSettings configure the inbound listener; zero values mean the
// documented defaults (Addr: DefaultAddr).
type ServerSettings = proxy.ServerSettings

// NewServer returns the inbound server: HTTP/1.1 and HTTP/2 with prior
// knowledge (h2c) on the same port — or, when s.TLS is set, HTTP/1.1 and
// HTTP/2 over TLS, chosen by ALPN — with no write timeout (streams may
// last) and bounded header reads. gRPC calls arrive on it either way.
// Serve it with Serve, or ServeTLS(ln, "", "") when s.TLS is set.
func NewServer(s ServerSettings, h http.Handler) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if s.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return proxy.NewServer(s, DefaultAddr, &protocols, h)
}
