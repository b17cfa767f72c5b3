// Package breaker is tracecar's circuit breaker: one per upstream, so that a
// failing dependency is cut off at once instead of holding every caller's
// requests, connections and goroutines while it times out.
//
// A Breaker is a three-state machine:
//
//	closed ──(N consecutive failures, or failure ratio over the window)──► open
//	open ──(open period elapsed; next Allow)──► half-open
//	half-open ──(SuccessesToClose probe successes)──► closed
//	half-open ──(a probe fails)──► open, for twice as long (±20% jitter, capped)
//
// While open, Allow rejects without the caller dialing, with an *OpenError
// that names the upstream, the state, why it opened and when to retry.
// Admission and outcome are two steps (Allow, then done), so a stream
// reports when it ends, not when it starts. Every transition reaches an
// Observer with its reason and the counts behind it; Metrics is the
// Prometheus Observer. A Set keeps one Breaker per upstream name, bounded.
//
// The package is protocol-neutral: callers decide what an Outcome is (see
// proxy.Outcome for HTTP).
//
// The state machine is written here rather than taken from
// sony/gobreaker/v2 (v2.4.0 was evaluated, and its one-file state machine
// and two-step API are the model for this one) because gobreaker cannot
// express three things tracecar needs: its open Timeout is fixed (no
// exponential backoff with jitter between consecutive reopens), it reads
// time.Now directly (no clock to drive it in tests), and its OnStateChange
// callback carries no reason and no counts.
package breaker
