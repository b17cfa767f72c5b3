package main

import (
	"context"
	"log/slog"

	"github.com/tracecar/tracecar/proxy/breaker"
)

// breakerObserver exports every breaker transition and rejection as
// metrics (the embedded Metrics, which also handles evictions from the
// bounded set) and logs each transition with its reason and counts.
type breakerObserver struct {
	*breaker.Metrics
	log *slog.Logger
}

// Transition records and logs one state change. It runs under the
// breaker's lock, so transitions are logged in order.
func (o breakerObserver) Transition(t breaker.Transition) {
	o.Metrics.Transition(t)
	level := slog.LevelWarn
	if t.To == breaker.StateClosed {
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.String("upstream", t.Upstream),
		slog.String("from", t.From.String()),
		slog.String("to", t.To.String()),
		slog.String("reason", t.Reason),
		slog.Int("requests", t.Counts.Requests),
		slog.Int("failures", t.Counts.Failures),
		slog.Int("consecutive_failures", t.Counts.ConsecutiveFailures),
	}
	if t.To == breaker.StateOpen {
		attrs = append(attrs, slog.Duration("open_for", t.OpenFor))
	}
	// No request context: a transition belongs to the upstream, not to the
	// request that happened to cause it (that request gets a span event).
	o.log.LogAttrs(context.Background(), level, "circuit breaker "+t.To.String(), attrs...)
}
