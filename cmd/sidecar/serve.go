package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
	"github.com/tracecar/tracecar/cmd/sidecar/internal/telemetry"
	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/httpproxy"
)

// telemetryFlushTimeout bounds the final span flush at shutdown.
const telemetryFlushTimeout = 5 * time.Second

// serve runs the sidecar until a signal: the first drains and exits cleanly,
// a second exits at once.
func serve(ctx context.Context, cfg *config.Config, logOut io.Writer, signals <-chan os.Signal) error {
	log := newLogger(cfg, logOut)
	if len(cfg.Unknown) > 0 {
		log.Warn("unknown TRACECAR_ variables ignored (misspelt?)", slog.Any("names", cfg.Unknown))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)

	tel, err := telemetry.Setup(ctx, telemetry.Settings{
		ServiceVersion: version,
		Protocol:       cfg.OTel.Protocol,
		Disabled:       cfg.OTel.SDKDisabled,
		QueueSize:      cfg.OTel.BSPMaxQueueSize,
		BatchSize:      cfg.OTel.BSPMaxExportBatchSize,
		ExportInterval: cfg.OTel.BSPScheduleDelay,
		ExportTimeout:  cfg.OTel.BSPExportTimeout,
		Logger:         log,
		Registerer:     reg,
	})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	prop := telemetry.Propagator(cfg.OTel.Propagators, propagation.TraceContext{})
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetTextMapPropagator(prop)

	handler, err := httpproxy.New(httpproxy.Settings{
		Upstream:              cfg.Upstream,
		Correlation:           propagation.NewCorrelation(cfg.CorrelationHeader, cfg.CorrelationMaxLen),
		Edge:                  !cfg.TrustIncomingTrace,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: noneIsNegative(cfg.UpstreamResponseHeaderTimeout),
		IdleConnTimeout:       cfg.UpstreamIdleConnTimeout,
		MaxIdleConns:          cfg.UpstreamMaxIdleConns,
		StreamIdleTimeout:     cfg.StreamIdleTimeout,
		AccessLog:             cfg.AccessLog,
	}, httpproxy.Deps{
		TracerProvider: tel.TracerProvider,
		Propagator:     prop,
		Logger:         log,
		Metrics:        httpproxy.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	inbound := httpproxy.NewServer(httpproxy.ServerSettings{
		Addr:              cfg.InboundAddr,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Logger:            log,
	}, handler)

	var ready atomic.Bool
	admin := &http.Server{
		Addr:              cfg.AdminAddr,
		Handler:           adminMux(reg, &ready),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Bind both listeners before reporting ready, so a taken port fails
	// start-up with a clear error instead of a half-started sidecar.
	inLn, err := net.Listen("tcp", cfg.InboundAddr)
	if err != nil {
		return fmt.Errorf("inbound listener (TRACECAR_INBOUND_ADDR): %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		_ = inLn.Close()
		return fmt.Errorf("admin listener (TRACECAR_ADMIN_ADDR): %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- serveUntilClosed(inbound, inLn) }()
	go func() { errc <- serveUntilClosed(admin, adminLn) }()
	ready.Store(true)
	log.Info("sidecar ready",
		slog.String("version", version),
		slog.String("inbound", inLn.Addr().String()),
		slog.String("admin", adminLn.Addr().String()),
		slog.String("upstream", cfg.Upstream.Redacted()))

	var stopErr error
	select {
	case sig := <-signals:
		log.Info("draining", slog.String("signal", sig.String()),
			slog.Duration("delay", cfg.DrainDelay), slog.Duration("timeout", cfg.DrainTimeout))
	case stopErr = <-errc:
		log.Error("listener failed", slog.Any("error", stopErr))
	}

	// A second signal while draining exits at once.
	go func() {
		if sig, ok := <-signals; ok {
			log.Warn("second signal: exiting without draining", slog.String("signal", sig.String()))
			os.Exit(exitFailed)
		}
	}()
	drain(ctx, cfg, log, &ready, inbound, handler)
	flushCtx, cancel := context.WithTimeout(ctx, telemetryFlushTimeout)
	defer cancel()
	if err := tel.Shutdown(flushCtx); err != nil {
		log.Warn("span flush incomplete", slog.Any("error", err))
	}
	_ = admin.Close() // last: /metrics stays readable while draining
	log.Info("stopped")
	return stopErr
}

// drain flips readiness, waits the drain delay with listeners open, then
// lets in-flight requests finish within the drain timeout.
func drain(ctx context.Context, cfg *config.Config, log *slog.Logger, ready *atomic.Bool,
	inbound *http.Server, handler *httpproxy.Handler) {
	ready.Store(false)
	if cfg.DrainDelay > 0 {
		t := time.NewTimer(cfg.DrainDelay)
		<-t.C
	}
	shutCtx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
	defer cancel()
	if err := inbound.Shutdown(shutCtx); err != nil {
		log.Warn("drain timeout: closing remaining connections", slog.Any("error", err))
		_ = inbound.Close()
	}
	handler.Close()
}

func serveUntilClosed(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// adminMux serves the admin endpoints: liveness, readiness (false while
// draining) and Prometheus metrics.
func adminMux(reg *prometheus.Registry, ready *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tracecar_build_info",
		Help: "Build of the running sidecar; the value is always 1.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	return g
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(proxy.NewLogHandler(h))
}

// noneIsNegative maps the configuration's "0 = no limit" to the proxy's
// "negative = no limit" (its zero means the default).
func noneIsNegative(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
