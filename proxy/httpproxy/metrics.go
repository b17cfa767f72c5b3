package httpproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracecar/tracecar/proxy"
)

// Metrics are the inbound proxy's Prometheus series. The counters are
// resolved once at construction so the request path does no label lookup.
// A nil *Metrics records nothing.
type Metrics struct {
	requests *proxy.RequestCounters
	duration prometheus.Histogram
	inflight prometheus.Gauge
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_http_requests_total",
		Help: "Inbound HTTP requests handled, by method and status class (client hang-ups count as 4xx, logged as 499).",
	}, []string{"method", "code"})
	m := &Metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tracecar_http_request_duration_seconds",
			Help:    "Time from accepting an inbound request to the end of its response, including streams.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracecar_http_requests_in_flight",
			Help: "Inbound HTTP requests being handled now (WebSocket connections included).",
		}),
	}
	m.requests = proxy.NewRequestCounters(requests)
	if reg != nil {
		reg.MustRegister(requests, m.duration, m.inflight)
	}
	return m
}

func (m *Metrics) start() {
	if m != nil {
		m.inflight.Inc()
	}
}

func (m *Metrics) done(method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.inflight.Dec()
	m.requests.Inc(method, status)
	m.duration.Observe(elapsed.Seconds())
}
