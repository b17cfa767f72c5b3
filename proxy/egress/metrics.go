package egress

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracecar/tracecar/proxy"
)

// Reasons for refusing an egress request, the values of the reason label.
const (
	rejectConcurrency = iota // MaxConcurrent reached
	rejectDenied             // destination not on the allow-list
	rejectBreaker            // the destination's circuit is open
	numRejectReasons
)

var rejectLabels = [numRejectReasons]string{"concurrency", "denied", "breaker"}

// Metrics are the egress proxy's Prometheus series, resolved once at
// construction so the request path does no label lookup. A nil *Metrics
// records nothing.
type Metrics struct {
	requests *proxy.RequestCounters
	duration prometheus.Histogram
	inflight prometheus.Gauge
	rejected [numRejectReasons]prometheus.Counter
	tunnels  prometheus.Counter
}

// NewMetrics creates the series and registers them on reg (nil: not
// registered):
//
//	tracecar_egress_requests_total{method,code}   requests by method and status class (CONNECT: the tunnel's answer)
//	tracecar_egress_request_duration_seconds      plain-HTTP request durations, streams included, tunnels not
//	tracecar_egress_in_flight                     requests and tunnels in flight
//	tracecar_egress_rejected_total{reason}        refused: concurrency, denied, breaker
//	tracecar_egress_tunnels_total                 CONNECT tunnels established
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_egress_requests_total",
		Help: "Outbound requests through the egress proxy, by method and status class (client hang-ups count as 4xx, logged as 499).",
	}, []string{"method", "code"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_egress_rejected_total",
		Help: "Outbound requests refused before reaching the destination, by reason (concurrency, denied, breaker).",
	}, []string{"reason"})
	m := &Metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tracecar_egress_request_duration_seconds",
			Help:    "Time from accepting an outbound plain-HTTP request to the end of its response, including streams.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracecar_egress_in_flight",
			Help: "Outbound requests and CONNECT tunnels in flight through the egress proxy.",
		}),
		tunnels: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_egress_tunnels_total",
			Help: "CONNECT tunnels established by the egress proxy.",
		}),
	}
	m.requests = proxy.NewRequestCounters(requests)
	for i, r := range rejectLabels {
		m.rejected[i] = rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(requests, rejected, m.duration, m.inflight, m.tunnels)
	}
	return m
}

func (m *Metrics) start() {
	if m != nil {
		m.inflight.Inc()
	}
}

func (m *Metrics) end() {
	if m != nil {
		m.inflight.Dec()
	}
}

func (m *Metrics) reject(reason int) {
	if m != nil {
		m.rejected[reason].Inc()
	}
}

func (m *Metrics) tunnel() {
	if m != nil {
		m.tunnels.Inc()
	}
}

// request counts a finished request; elapsed < 0 leaves the histogram
// alone (tunnels).
func (m *Metrics) request(method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.requests.Inc(method, status)
	if elapsed >= 0 {
		m.duration.Observe(elapsed.Seconds())
	}
}
