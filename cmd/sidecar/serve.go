package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/httpproxy"
	"github.com/tracecar/tracecar/proxy/stitch"
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

	appBreaker, egressBreakers := newBreakers(cfg, log, reg)
	// Inbound requests are remembered only for stitching the app's outbound
	// calls; without egress nobody would look them up.
	var stitches *stitch.Registry
	if cfg.EgressEnabled {
		stitches = stitch.New(stitch.Settings{MaxEntries: cfg.StitchMaxEntries, TTL: cfg.StitchTTL}, stitch.NewMetrics(reg))
	}

	idem, err := newIdempotency(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer idem.close()

	handler, err := httpproxy.New(httpproxy.Settings{
		Upstream:                cfg.Upstream,
		Correlation:             propagation.NewCorrelation(cfg.CorrelationHeader, cfg.CorrelationMaxLen),
		Edge:                    !cfg.TrustIncomingTrace,
		MaxBodyBytes:            cfg.MaxBodyBytes,
		DialTimeout:             cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout:   noneIsNegative(cfg.UpstreamResponseHeaderTimeout),
		IdleConnTimeout:         cfg.UpstreamIdleConnTimeout,
		MaxIdleConns:            cfg.UpstreamMaxIdleConns,
		StreamIdleTimeout:       cfg.StreamIdleTimeout,
		GRPCMessageEvents:       offIsNegativeInt(cfg.GRPCMessageEvents),
		GRPCMaxRecvMessageBytes: cfg.GRPCMaxRecvMessageBytes,
		AccessLog:               cfg.AccessLog,
		// The app's breaker counts only connect errors and timeouts: an app
		// that answers 5xx is up, and its 5xx often relay a failing
		// dependency, which that dependency's own egress breaker cuts off.
		// Counting them would take the whole service offline for one bad
		// dependency.
		FailureStatuses: []int{},
		Idempotency:     idem.settings,
	}, httpproxy.Deps{
		TracerProvider:     tel.TracerProvider,
		Propagator:         prop,
		Logger:             log,
		Metrics:            httpproxy.NewMetrics(reg),
		Breaker:            appBreaker,
		Stitch:             stitches,
		IdempotencyStore:   idem.store,
		IdempotencyMetrics: idem.metrics,
	})
	if err != nil {
		return err
	}
	inboundSettings := httpproxy.ServerSettings{
		Addr:              cfg.InboundAddr,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Logger:            log,
	}
	if cfg.TLSCertFile != "" {
		certs, err := proxy.LoadCertFiles(cfg.TLSCertFile, cfg.TLSKeyFile, log)
		if err != nil {
			return fmt.Errorf("inbound listener (TRACECAR_TLS_CERT_FILE): %w", err)
		}
		inboundSettings.TLS = proxy.ServerTLSConfig(certs)
	}
	inbound := httpproxy.NewServer(inboundSettings, handler)

	var ready atomic.Bool
	admin := &http.Server{
		Addr:              cfg.AdminAddr,
		Handler:           adminMux(reg, &ready, cfg.AdminPprof),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Drain order: inbound first (its in-flight requests may still call out
	// through egress), then egress, then admin (so /metrics and /readyz stay
	// readable while draining).
	servers := []*server{{name: "inbound", env: "TRACECAR_INBOUND_ADDR", srv: inbound, close: handler.Close}}
	if cfg.EgressEnabled {
		eg, err := newEgress(cfg, log, reg, tel.TracerProvider, prop, egressBreakers, stitches)
		if err != nil {
			return err
		}
		egGRPC, err := newEgressGRPC(cfg, log, tel.TracerProvider, prop, egressBreakers, stitches)
		if err != nil {
			return err
		}
		servers = append(servers, eg, egGRPC)
	}
	servers = append(servers, &server{name: "admin", env: "TRACECAR_ADMIN_ADDR", srv: admin})

	// Bind every listener before reporting ready, so a taken port fails
	// start-up with a clear error instead of a half-started sidecar.
	for i, s := range servers {
		if s.ln, err = net.Listen("tcp", s.srv.Addr); err != nil {
			for _, bound := range servers[:i] {
				_ = bound.ln.Close()
			}
			return fmt.Errorf("%s listener (%s): %w", s.name, s.env, err)
		}
	}
	errc := make(chan error, len(servers))
	attrs := []slog.Attr{slog.String("version", version), slog.String("upstream", cfg.Upstream.Redacted())}
	for _, s := range servers {
		go func() { errc <- s.serve() }()
		attrs = append(attrs, slog.String(s.name, s.ln.Addr().String()))
	}
	ready.Store(true)
	log.LogAttrs(ctx, slog.LevelInfo, "sidecar ready", attrs...)

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
	drain(ctx, cfg, log, &ready, servers[:len(servers)-1])
	flushCtx, cancel := context.WithTimeout(ctx, telemetryFlushTimeout)
	defer cancel()
	if err := tel.Shutdown(flushCtx); err != nil {
		log.Warn("span flush incomplete", slog.Any("error", err))
	}
	_ = admin.Close()
	log.Info("stopped")
	return stopErr
}

// server is one listener of the sidecar.
type server struct {
	name, env string // for logs and errors: "inbound", "TRACECAR_INBOUND_ADDR"
	srv       *http.Server
	ln        net.Listener
	close     func() // releases what Shutdown does not (hijacked conns, pools)
}

func (s *server) serve() error {
	serve := s.srv.Serve
	if s.srv.TLSConfig != nil {
		serve = func(ln net.Listener) error { return s.srv.ServeTLS(ln, "", "") }
	}
	if err := serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", s.name, err)
	}
	return nil
}

// drain flips readiness, waits the drain delay with listeners open, then
// shuts the servers down in order, all within one drain timeout: each stops
// accepting and lets its in-flight requests finish.
func drain(ctx context.Context, cfg *config.Config, log *slog.Logger, ready *atomic.Bool, servers []*server) {
	ready.Store(false)
	if cfg.DrainDelay > 0 {
		t := time.NewTimer(cfg.DrainDelay)
		<-t.C
	}
	shutCtx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(shutCtx); err != nil {
			log.Warn("drain timeout: closing remaining connections", slog.String("listener", s.name), slog.Any("error", err))
			_ = s.srv.Close()
		}
		if s.close != nil {
			s.close()
		}
	}
}

// adminMux serves the admin endpoints: liveness, readiness (false while
// draining) and Prometheus metrics.
func adminMux(reg *prometheus.Registry, ready *atomic.Bool, profiles bool) *http.ServeMux {
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
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
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

// newBreakers builds the circuit breakers: one for the app (named by its
// URL, outside the bounded set so egress traffic can never evict it) and a
// bounded set with one per egress destination host:port. Both are nil when
// breaking is disabled.
func newBreakers(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*breaker.Breaker, *breaker.Set) {
	if !cfg.BreakerEnabled {
		return nil, nil
	}
	ratio := cfg.BreakerFailureRatio
	if ratio == 0 {
		ratio = -1
	}
	s := breaker.Settings{
		ConsecutiveFailures: offIsNegativeInt(cfg.BreakerConsecutiveFailures),
		FailureRatio:        ratio,
		MinRequests:         cfg.BreakerMinRequests,
		Window:              cfg.BreakerWindow,
		HalfOpenProbes:      cfg.BreakerHalfOpenProbes,
		SuccessesToClose:    cfg.BreakerSuccessesToClose,
		OpenTimeout:         cfg.BreakerOpenTimeout,
		MaxOpenTimeout:      cfg.BreakerMaxOpenTimeout,
	}
	obs := breakerObserver{Metrics: breaker.NewMetrics(reg), log: log}
	return breaker.New(cfg.Upstream.Redacted(), s, obs), breaker.NewSet(s, obs, cfg.BreakerMaxUpstreams)
}

// offIsNegativeInt maps the configuration's "0 = off" to the proxy's
// "negative = off" (its zero means the default).
func offIsNegativeInt(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// noneIsNegative maps the configuration's "0 = no limit" to the proxy's
// "negative = no limit" (its zero means the default).
func noneIsNegative(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
