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
// knowledge (h2c) on the same port, no write timeout (streams may last), and
// bounded header reads.
func NewServer(s ServerSettings, h http.Handler) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return proxy.NewServer(s, DefaultAddr, &protocols, h)
}
