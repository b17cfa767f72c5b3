package main

import (
	"log/slog"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/egress"
	"github.com/tracecar/tracecar/proxy/grpcproxy"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// newEgressGRPC builds the outbound gRPC proxy: the app's gRPC clients dial
// it with the destination as :authority. It shares the HTTP egress proxy's
// allow-list, breakers (one per destination host:port, whichever protocol
// reaches it) and stitching.
func newEgressGRPC(cfg *config.Config, log *slog.Logger, tp trace.TracerProvider, prop otelprop.TextMapPropagator,
	breakers *breaker.Set, stitches *stitch.Registry) (*server, error) {
	allow, err := egress.ParseAllowList(cfg.EgressAllow)
	if err != nil {
		return nil, err
	}
	p, err := grpcproxy.New(grpcproxy.Settings{
		Allow:           allow.Allows,
		DialTimeout:     cfg.UpstreamDialTimeout,
		Correlation:     propagation.NewCorrelation(cfg.CorrelationHeader, cfg.CorrelationMaxLen),
		SerialInference: cfg.EgressSerialInference,
	}, grpcproxy.Deps{TracerProvider: tp, Propagator: prop, Logger: log, Stitch: stitches, Breakers: breakers})
	if err != nil {
		return nil, err
	}
	srv := grpcproxy.NewServer(proxy.ServerSettings{
		Addr:              cfg.EgressGRPCAddr,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Logger:            log,
	}, p)
	return &server{name: "egress_grpc", env: "TRACECAR_EGRESS_GRPC_ADDR", srv: srv, close: p.Close}, nil
}
