package report

import "math"

// Check is one line of the performance budget, judged on the median across
// the kept rounds of a figure computed inside each round.
type Check struct {
	Name  string
	Limit string
	// Max is true when the figure must stay at or below Bound, false when
	// at or above it.
	Max     bool
	Bound   float64
	Unit    string
	Figure  func(*Round) (float64, bool)
	Decimal int
}

// Budget is tracecar's performance budget: tracing on at 100 % (S1), W1 at
// the fixed rate with 1 KiB answers, the proxy on one core. The dedupe
// cache's own budget is not part of the RSS limits (W1 sends no
// Idempotency-Key, so the cache is empty there).
var Budget = []Check{
	{Name: "CPU per request", Limit: "≤ 100 µs", Max: true, Bound: 100, Unit: "µs", Figure: CPU(TraceOn, W1), Decimal: 1},
	{Name: "CPU per request vs nginx (same round)", Limit: "≤ 2×", Max: true, Bound: 2, Unit: "×", Figure: CPURatio(TraceOn, Nginx, W1), Decimal: 2},
	{Name: "added p50 vs nginx's added p50", Limit: "≤ 1.5×", Max: true, Bound: 1.5, Unit: "×", Figure: AddedRatio(TraceOn, Nginx, W1, 50), Decimal: 2},
	{Name: "added p99 vs nginx's added p99", Limit: "≤ 2.5×", Max: true, Bound: 2.5, Unit: "×", Figure: AddedRatio(TraceOn, Nginx, W1, 99), Decimal: 2},
	{Name: "added p99", Limit: "≤ 500 µs", Max: true, Bound: 500, Unit: "µs", Figure: Added(TraceOn, W1, 99), Decimal: 0},
	{Name: "max throughput vs direct (W6)", Limit: "≥ 0.5×", Bound: 0.5, Unit: "×", Figure: RPSRatio(TraceOn, Direct, W6), Decimal: 2},
	{Name: "tracing on/off max throughput (S1/S0, W6)", Limit: "≥ 0.9", Bound: 0.9, Unit: "×", Figure: RPSRatio(TraceOn, TraceOff, W6), Decimal: 2},
	{Name: "RSS under load (VmHWM after W1)", Limit: "≤ 25 MiB", Max: true, Bound: 25, Unit: "MiB", Figure: Memory(TraceOn, func(p *Process) int64 { return p.LoadHWMKiB }), Decimal: 1},
	{Name: "RSS idle (VmRSS once ready)", Limit: "≤ 15 MiB", Max: true, Bound: 15, Unit: "MiB", Figure: Memory(TraceOn, func(p *Process) int64 { return p.IdleRSSKiB }), Decimal: 1},
}

// GRPCTargets are the gRPC unary targets (W4): S1 against direct and
// nginx's `grpc_pass` in the same round, 1 KiB payloads, the proxy on one
// core. CPU is compared at the fixed rate, throughput closed loop.
var GRPCTargets = []Check{
	{Name: "added p50", Limit: "≤ 200 µs", Max: true, Bound: 200, Unit: "µs", Figure: Added(TraceOn, GRPC, 50), Decimal: 0},
	{Name: "max throughput vs direct (closed loop)", Limit: "≥ 0.5×", Bound: 0.5, Unit: "×", Figure: RPSRatio(TraceOn, Direct, GRPCMax), Decimal: 2},
	{Name: "CPU per call vs nginx `grpc_pass` (same round)", Limit: "≤ 1.5×", Max: true, Bound: 1.5, Unit: "×", Figure: CPURatio(TraceOn, Nginx, GRPC), Decimal: 2},
}

// Verdict is a check's outcome.
type Verdict string

// Verdicts.
const (
	Pass    Verdict = "pass"
	Fail    Verdict = "FAIL"
	Unknown Verdict = "n/a"
)

// Judge evaluates c on the kept rounds.
func (c Check) Judge(rounds []Round) (Stat, Verdict) {
	s := Across(rounds, c.Figure)
	if s.N == 0 || math.IsNaN(s.Median) {
		return s, Unknown
	}
	ok := s.Median >= c.Bound
	if c.Max {
		ok = s.Median <= c.Bound
	}
	if ok {
		return s, Pass
	}
	return s, Fail
}
