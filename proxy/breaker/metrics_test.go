package breaker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	clock := newFakeClock()
	s := NewSet(Settings{ConsecutiveFailures: 1, SuccessesToClose: 1, OpenTimeout: time.Second, Clock: clock, Rand: noJitter}, m, 2)

	api := s.Get("api:80")
	run(t, api, Failure)
	if got := testutil.ToFloat64(m.state.WithLabelValues("api:80")); got != 1 {
		t.Fatalf("state = %v, want 1 (open)", got)
	}
	for range 3 {
		rejected(t, api)
	}
	clock.Advance(time.Second)
	p := admit(t, api)
	if got := testutil.ToFloat64(m.state.WithLabelValues("api:80")); got != 2 {
		t.Fatalf("state = %v, want 2 (half-open)", got)
	}
	rejected(t, api)
	p(Success)

	want := `
# HELP tracecar_breaker_rejections_total Requests rejected without being sent because the upstream's circuit was open or its half-open probes were taken.
# TYPE tracecar_breaker_rejections_total counter
tracecar_breaker_rejections_total{upstream="api:80"} 4
# HELP tracecar_breaker_state State of the circuit breaker of an upstream: 0 closed, 1 open, 2 half-open.
# TYPE tracecar_breaker_state gauge
tracecar_breaker_state{upstream="api:80"} 0
# HELP tracecar_breaker_transitions_total Changes of state of the circuit breaker of an upstream.
# TYPE tracecar_breaker_transitions_total counter
tracecar_breaker_transitions_total{from="closed",to="open",upstream="api:80"} 1
tracecar_breaker_transitions_total{from="half-open",to="closed",upstream="api:80"} 1
tracecar_breaker_transitions_total{from="open",to="half-open",upstream="api:80"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tracecar_breaker_state", "tracecar_breaker_rejections_total", "tracecar_breaker_transitions_total"); err != nil {
		t.Fatal(err)
	}

	// Fill the set with open breakers: the next name overflows, and an
	// evicted upstream's series are gone.
	run(t, s.Get("db:5432"), Failure) // set: api (closed), db (open)
	run(t, s.Get("mq:5672"), Failure) // evicts api
	if got := testutil.ToFloat64(m.evictions); got != 1 {
		t.Fatalf("evictions = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.transitions); n != 2 {
		t.Fatalf("transition series = %d, want 2 (db and mq; api deleted)", n)
	}
	if n := testutil.CollectAndCount(m.state); n != 2 {
		t.Fatalf("state series = %d, want 2", n)
	}
	if n := testutil.CollectAndCount(m.rejections); n != 0 {
		t.Fatalf("rejection series = %d, want 0 (api's deleted)", n)
	}
	s.Get("cache:6379")
	s.Get("search:9200")
	if got := testutil.ToFloat64(m.overflows); got != 2 {
		t.Fatalf("overflows = %v, want 2", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	b := New("api", Settings{ConsecutiveFailures: 1, Clock: newFakeClock()}, m)
	run(t, b, Failure)
	rejected(t, b)
	m.Evicted("api")
	m.Overflowed("x")
	wantState(t, b, StateOpen)
}
