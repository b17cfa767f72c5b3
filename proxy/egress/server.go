package egress

import (
	"log/slog"
	"net/http"
	"time"
)

// DefaultAddr is the egress listener's default address: loopback only, so
// the sidecar is never an open proxy.
const DefaultAddr = "127.0.0.1:15001"

// ServerSettings configure the egress listener. Zero values mean the
// documented defaults.
type ServerSettings struct {
	// Addr is the listen address. Zero: "127.0.0.1:15001".
	Addr string
	// MaxHeaderBytes bounds request headers; larger ones get 431.
	// Zero: 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's headers. Zero: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes the app's keep-alive connections idle this long.
	// Zero: 120s.
	IdleTimeout time.Duration
	// Logger receives the server's own errors. Nil: slog.Default().
	Logger *slog.Logger
}

// NewServer returns the egress server: HTTP/1.1 (what HTTP_PROXY clients
// speak to a proxy, and what CONNECT tunnels need), no write timeout
// (streams and tunnels may last), bounded header reads.
func NewServer(s ServerSettings, h http.Handler) *http.Server {
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = 10 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 120 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Server{
		Addr:              s.Addr,
		Handler:           h,
		Protocols:         &protocols,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
}
