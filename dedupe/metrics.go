package dedupe

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a completed record was lost before its retention ended (label
// values of tracecar_idempotency_store_lost_total).
const (
	LostSetDropped = "set_dropped" // the cache's write buffer was full
	LostNotVisible = "not_visible" // written, but not readable after Wait
	LostEvicted    = "evicted"     // evicted (or replaced) before ExpiresAt
	LostRejected   = "rejected"    // refused by the cache's admission policy
)

// Metrics are the store's Prometheus series. One Metrics may be shared by
// several stores.
type Metrics struct {
	// Records is in-flight claims plus completed records held (memory store).
	Records prometheus.Gauge
	// Bytes is the encoded size of the completed records held (memory store).
	Bytes prometheus.Gauge
	// Lost counts completed records lost before ExpiresAt, by reason. Each
	// one can mean a second execution of a retried request.
	Lost *prometheus.CounterVec
	// Errors counts store operations that failed (ErrStoreUnavailable).
	Errors prometheus.Counter
	// Full counts claims refused because the in-flight bound was reached.
	Full prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered). Series already registered by an earlier call are reused.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracecar_idempotency_store_records",
			Help: "Idempotency records held by the memory store: in-flight claims plus completed records.",
		}),
		Bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracecar_idempotency_store_bytes",
			Help: "Encoded bytes of completed idempotency records held by the memory store.",
		}),
		Lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracecar_idempotency_store_lost_total",
			Help: "Completed idempotency records lost before their retention ended (a retry may execute again).",
		}, []string{"reason"}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_idempotency_store_errors_total",
			Help: "Idempotency store operations that failed because the store was unavailable.",
		}),
		Full: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_idempotency_store_full_total",
			Help: "Idempotency claims refused because the in-flight bound was reached.",
		}),
	}
	for _, r := range []string{LostSetDropped, LostNotVisible, LostEvicted, LostRejected} {
		m.Lost.WithLabelValues(r)
	}
	if reg != nil {
		m.Records = register(reg, m.Records)
		m.Bytes = register(reg, m.Bytes)
		m.Lost = register(reg, m.Lost)
		m.Errors = register(reg, m.Errors)
		m.Full = register(reg, m.Full)
	}
	return m
}

// register registers c, or returns the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a clashing series of another type is a programming error
	}
	return c
}

func metricsOrNew(m *Metrics) *Metrics {
	if m == nil {
		return NewMetrics(nil)
	}
	return m
}
