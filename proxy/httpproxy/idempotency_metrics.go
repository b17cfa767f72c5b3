package httpproxy

import "github.com/prometheus/client_golang/prometheus"

// idemOutcome is what happened to one request on a protected route.
type idemOutcome int

const (
	outcomeExecuted         idemOutcome = iota // claimed, forwarded, result recorded
	outcomeReplayed                            // answered from a completed record
	outcomeConflict                            // same key still executing: 409
	outcomeMismatch                            // same key, different request: 422
	outcomeInvalid                             // malformed or repeated key: 400
	outcomeMissing                             // no key on a required route: 400
	outcomeTooLarge                            // body over the cap: 413
	outcomeReleased                            // claimed, then released (app never got it, or a release status)
	outcomeStoreUnavailable                    // the store failed the claim: 503, or passed through
	outcomeNotReplayable                       // a retry of an execution whose response was not kept: 409
	outcomeRecordFailed                        // executed, but the record could not be stored
	outcomeNotUnary                            // a gRPC call with a key streamed its request: FAILED_PRECONDITION
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"executed", "replayed", "conflict", "mismatch", "invalid", "missing",
	"too_large", "released", "store_unavailable", "not_replayable", "record_failed",
	"not_unary",
}

func (o idemOutcome) String() string { return outcomeNames[o] }

// IdempotencyMetrics are the Idempotency-Key middleware's Prometheus
// series, separate from Metrics so that a proxy without idempotency
// exports none of them. A nil *IdempotencyMetrics records nothing.
type IdempotencyMetrics struct {
	requests [numOutcomes]prometheus.Counter
	records  [2]prometheus.Counter // completed, not_replayable
}

// NewIdempotencyMetrics creates the series and registers them on reg (nil:
// not registered):
//
//	tracecar_idempotency_requests_total{outcome}  one per protected request:
//	    executed, replayed, conflict, mismatch, invalid, missing, too_large,
//	    released, store_unavailable, not_replayable, record_failed,
//	    not_unary (a gRPC call with a key that streamed its request)
//	tracecar_idempotency_records_total{state}  records written: completed
//	    (replayable) or not_replayable
func NewIdempotencyMetrics(reg prometheus.Registerer) *IdempotencyMetrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_idempotency_requests_total",
		Help: "Requests on Idempotency-Key protected routes, by outcome.",
	}, []string{"outcome"})
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_idempotency_records_total",
		Help: "Idempotency records written after an execution: completed (replayable) or not_replayable (too large or streaming).",
	}, []string{"state"})
	m := &IdempotencyMetrics{}
	for o := range numOutcomes {
		m.requests[o] = requests.WithLabelValues(o.String())
	}
	m.records[0] = records.WithLabelValues("completed")
	m.records[1] = records.WithLabelValues("not_replayable")
	if reg != nil {
		reg.MustRegister(requests, records)
	}
	return m
}

func (m *IdempotencyMetrics) count(o idemOutcome) {
	if m != nil {
		m.requests[o].Inc()
	}
}

func (m *IdempotencyMetrics) recorded(replayable bool) {
	if m == nil {
		return
	}
	if replayable {
		m.records[0].Inc()
	} else {
		m.records[1].Inc()
	}
}
