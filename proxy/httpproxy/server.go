package httpproxy

import (
	"log/slog"
	"net/http"
	"time"
)

// ServerSettings configure the inbound listener. Zero values mean the
// documented defaults.
type ServerSettings struct {
	// Addr is the listen address. Zero: ":15006".
	Addr string
	// MaxHeaderBytes bounds request headers (HTTP/1.1 and HTTP/2); larger
	// ones get 431. Zero: 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's headers. Zero: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes client keep-alive connections idle this long.
	// Zero: 120s.
	IdleTimeout time.Duration
	// Logger receives the server's own errors (bad TLS, accept failures).
	Logger *slog.Logger
}

// NewServer returns the inbound server: HTTP/1.1 and HTTP/2 with prior
// knowledge (h2c) on the same port, no write timeout (streams may last), and
// bounded header reads.
func NewServer(s ServerSettings, h http.Handler) *http.Server {
	if s.Addr == "" {
		s.Addr = ":15006"
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
	protocols.SetUnencryptedHTTP2(true)
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
