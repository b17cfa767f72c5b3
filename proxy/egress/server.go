package egress

import (
	"net/http"

	"github.com/tracecar/tracecar/proxy"
)

// DefaultAddr is the egress listener's default address: loopback only, so
// the sidecar is never an open proxy.
const DefaultAddr = "127.0.0.1:15001"

// ServerSettings configure the egress listener; zero values mean the
// documented defaults (Addr: DefaultAddr).
type ServerSettings = proxy.ServerSettings

// NewServer returns the egress server: HTTP/1.1 (what HTTP_PROXY clients
// speak to a proxy, and what CONNECT tunnels need), no write timeout
// (streams and tunnels may last), bounded header reads.
func NewServer(s ServerSettings, h http.Handler) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return proxy.NewServer(s, DefaultAddr, &protocols, h)
}
