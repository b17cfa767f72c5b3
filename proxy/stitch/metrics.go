package stitch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the registry's Prometheus series, resolved once at
// construction. A nil *Metrics records nothing.
type Metrics struct {
	entries prometheus.Gauge
	full    prometheus.Counter
	hit     prometheus.Counter
	miss    prometheus.Counter
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered):
//
//	tracecar_stitch_entries                    gauge: entries remembered now (in flight and finished)
//	tracecar_stitch_full_total                 counter: registry full, entry not remembered
//	tracecar_stitch_lookups_total{result}      counter: Lookup results, "hit" or "miss"
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_stitch_lookups_total",
		Help: "Correlation ID lookups by the egress proxy, by result (hit: parented under a known inbound request).",
	}, []string{"result"})
	m := &Metrics{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracecar_stitch_entries",
			Help: "Inbound requests remembered for trace stitching (in flight, and finished within the TTL).",
		}),
		full: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_stitch_full_total",
			Help: "Inbound requests not remembered because every slot held a request still in flight.",
		}),
		hit:  lookups.WithLabelValues("hit"),
		miss: lookups.WithLabelValues("miss"),
	}
	if reg != nil {
		reg.MustRegister(m.entries, m.full, lookups)
	}
	return m
}

func (m *Metrics) setEntries(n int) {
	if m != nil {
		m.entries.Set(float64(n))
	}
}

func (m *Metrics) fullInc() {
	if m != nil {
		m.full.Inc()
	}
}

func (m *Metrics) lookup(hit bool) {
	switch {
	case m == nil:
	case hit:
		m.hit.Inc()
	default:
		m.miss.Inc()
	}
}
