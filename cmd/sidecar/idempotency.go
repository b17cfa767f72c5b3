package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy/httpproxy"
)

// redisTimeout bounds each Redis round trip and dial: when the shared store
// is down, protected requests must get their 503 (required routes) or pass
// through (optional ones) quickly, not after go-redis's default retries.
const redisTimeout = time.Second

// idempotencyParts are what the inbound proxy needs to enforce
// Idempotency-Key, and what to close at shutdown.
type idempotencyParts struct {
	settings *httpproxy.IdempotencySettings
	store    dedupe.Store
	metrics  *httpproxy.IdempotencyMetrics
	close    func()
}

// newIdempotency builds the Idempotency-Key settings and store from the
// configuration; nil settings when enforcement is off.
func newIdempotency(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (idempotencyParts, error) {
	if !cfg.IdempotencyEnabled {
		return idempotencyParts{close: func() {}}, nil
	}
	routes := make([]httpproxy.IdemRoute, 0, len(cfg.IdempotencyRoutes))
	for _, r := range cfg.IdempotencyRoutes {
		routes = append(routes, httpproxy.IdemRoute{Method: r.Method, Path: r.Path, Mode: idemMode(r.Mode)})
	}
	p := idempotencyParts{
		settings: &httpproxy.IdempotencySettings{
			Routes:             routes,
			PrincipalHeaders:   cfg.IdempotencyPrincipalHeaders,
			FingerprintHeaders: cfg.IdempotencyFingerprintHeaders,
			MaxRequestBytes:    cfg.IdempotencyMaxRequestBytes,
			MaxResponseBytes:   cfg.IdempotencyMaxResponseBytes,
			Retention:          cfg.IdempotencyRetention,
			Lease:              cfg.IdempotencyLeaseOrDefault(),
			ReleaseStatuses:    cfg.IdempotencyReleaseStatuses,
			Wait:               cfg.IdempotencyWait,
		},
		metrics: httpproxy.NewIdempotencyMetrics(reg),
	}
	storeMetrics := dedupe.NewMetrics(reg)
	switch cfg.IdempotencyStore {
	case config.IdempotencyStoreRedis:
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil { // config checked the syntax; go-redis has the last word
			return p, fmt.Errorf("TRACECAR_REDIS_URL: %w", err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
		opts.DialerRetries, opts.MaxRetries = 1, -1
		redis.SetLogger(redisLog{log})
		client := redis.NewClient(opts)
		p.store = dedupe.NewRedis(client, dedupe.RedisSettings{}, storeMetrics)
		p.close = func() { _ = client.Close() }
		// Not fatal: while Redis is down, required routes answer 503 and
		// optional ones pass through; say so at start rather than on the
		// first protected request.
		pingCtx, cancel := context.WithTimeout(ctx, redisTimeout)
		defer cancel()
		if err := client.Ping(pingCtx).Err(); err != nil {
			log.Warn("idempotency store unreachable at start",
				slog.String("store", "redis"), slog.String("addr", opts.Addr), slog.Any("error", err))
		}
	default:
		m, err := dedupe.NewMemory(dedupe.MemorySettings{
			MaxBytes:    cfg.IdempotencyCacheBytes,
			MaxInFlight: cfg.IdempotencyMaxInFlight,
		}, storeMetrics)
		if err != nil {
			return p, fmt.Errorf("idempotency store: %w", err)
		}
		p.store = m
		p.close = m.Close
	}
	return p, nil
}

func idemMode(mode string) httpproxy.IdemMode {
	switch mode {
	case config.IdempotencyRequired:
		return httpproxy.IdemRequired
	case config.IdempotencyOptional:
		return httpproxy.IdemOptional
	default:
		return httpproxy.IdemOff
	}
}

// redisLog sends go-redis's own messages (each failed dial, for one) to the
// sidecar's log at debug level: store failures that matter are already
// counted and logged, once per request, by the Idempotency-Key middleware.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
