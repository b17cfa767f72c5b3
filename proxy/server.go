package proxy

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// ServerSettings configure one of the sidecar's HTTP listeners. Zero values
// mean the documented defaults.
type ServerSettings struct {
	// Addr is the listen address. Zero: the listener's own default.
	Addr string
	// MaxHeaderBytes bounds request headers (HTTP/1.1 and HTTP/2); larger
	// ones get 431. Zero: 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's headers. Zero: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero: 120s.
	IdleTimeout time.Duration
	// TLS, when set, makes the listener serve TLS (see CertFiles) instead
	// of plaintext.
	TLS *tls.Config
	// Logger receives the server's own errors (bad requests, accept
	// failures). Nil: slog.Default().
	Logger *slog.Logger
}

// NewServer returns an HTTP server for h speaking protocols, with bounded
// header reads and no write timeout (streams and tunnels may last).
// defaultAddr applies when s.Addr is empty.
func NewServer(s ServerSettings, defaultAddr string, protocols *http.Protocols, h http.Handler) *http.Server {
	if s.Addr == "" {
		s.Addr = defaultAddr
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
	return &http.Server{
		Addr:              s.Addr,
		Handler:           h,
		Protocols:         protocols,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		TLSConfig:         s.TLS,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
}
