package breaker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the breakers' Prometheus series. It is an Observer (and a
// SetObserver): pass it to New or NewSet, or call it from an Observer that
// also logs. The upstream label takes the names of a Set's breakers, so its
// values are bounded by the Set's size; an evicted upstream's series are
// deleted. An upstream's series appear with its first transition. A nil
// *Metrics records nothing.
type Metrics struct {
	state       *prometheus.GaugeVec
	rejections  *prometheus.CounterVec
	transitions *prometheus.CounterVec
	evictions   prometheus.Counter
	overflows   prometheus.Counter
}

var _ SetObserver = (*Metrics)(nil)

// NewMetrics creates the series and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tracecar_breaker_state",
			Help: "State of the circuit breaker of an upstream: 0 closed, 1 open, 2 half-open.",
		}, []string{"upstream"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracecar_breaker_rejections_total",
			Help: "Requests rejected without being sent because the upstream's circuit was open or its half-open probes were taken.",
		}, []string{"upstream"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracecar_breaker_transitions_total",
			Help: "Changes of state of the circuit breaker of an upstream.",
		}, []string{"upstream", "from", "to"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_breaker_evictions_total",
			Help: "Closed breakers dropped because the set of breakers was full.",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_breaker_overflow_total",
			Help: "Lookups of an upstream that got the shared _overflow breaker because the set was full of open breakers.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.state, m.rejections, m.transitions, m.evictions, m.overflows)
	}
	return m
}

// Transition sets the upstream's state and counts the transition.
func (m *Metrics) Transition(t Transition) {
	if m == nil {
		return
	}
	m.state.WithLabelValues(t.Upstream).Set(float64(t.To))
	m.transitions.WithLabelValues(t.Upstream, t.From.String(), t.To.String()).Inc()
}

// Rejected counts a rejection.
func (m *Metrics) Rejected(upstream string) {
	if m != nil {
		m.rejections.WithLabelValues(upstream).Inc()
	}
}

// Evicted counts the eviction and deletes the upstream's series.
func (m *Metrics) Evicted(upstream string) {
	if m == nil {
		return
	}
	m.evictions.Inc()
	m.state.DeleteLabelValues(upstream)
	m.rejections.DeleteLabelValues(upstream)
	m.transitions.DeletePartialMatch(prometheus.Labels{"upstream": upstream})
}

// Overflowed counts a lookup answered with the overflow breaker.
func (m *Metrics) Overflowed(string) {
	if m != nil {
		m.overflows.Inc()
	}
}
