package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/egress"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// newEgress builds the outbound proxy the app reaches through HTTP_PROXY
// and HTTPS_PROXY.
func newEgress(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider,
	prop otelprop.TextMapPropagator, breakers *breaker.Set, stitches *stitch.Registry) (*server, error) {
	p, err := egress.New(egress.Settings{
		Allow:           cfg.EgressAllow,
		MaxConcurrent:   cfg.EgressMaxConcurrent,
		RequestTimeout:  noneIsNegative(cfg.EgressTimeout),
		DialTimeout:     cfg.UpstreamDialTimeout,
		Correlation:     propagation.NewCorrelation(cfg.CorrelationHeader, cfg.CorrelationMaxLen),
		SerialInference: cfg.EgressSerialInference,
		FailureStatuses: cfg.BreakerFailureStatuses,
		DisableBreaker:  breakers == nil,
		AccessLog:       cfg.AccessLog,
	}, egress.Deps{
		TracerProvider: tp,
		Propagator:     prop,
		Logger:         log,
		Metrics:        egress.NewMetrics(reg),
		Stitch:         stitches,
		Breakers:       breakers,
	})
	if err != nil {
		return nil, err
	}
	srv := egress.NewServer(egress.ServerSettings{
		Addr:              cfg.EgressAddr,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Logger:            log,
	}, p)
	return &server{name: "egress", env: "TRACECAR_EGRESS_ADDR", srv: srv, close: p.Close}, nil
}
