package report

import (
	"fmt"
	"math"
	"slices"
)

// OutlierFactor is the declared outlier rule: a round is dropped when its
// Direct W1 p99 is above OutlierFactor times the median Direct W1 p99 of
// all rounds, or when Direct W1 itself was invalid.
const OutlierFactor = 2.0

// OutlierRule says the rule in words, for the header.
const OutlierRule = "drop a round if D's W1 p99 > 2× the median D W1 p99 across rounds (or D's W1 run was invalid)"

// ApplyOutlierRule marks the rounds the rule drops.
func ApplyOutlierRule(rounds []Round) {
	var p99s []float64
	for i := range rounds {
		if run, ok := rounds[i].Find(Direct, W1); ok {
			p99s = append(p99s, run.Result.Latency.P99)
		}
	}
	med := Median(p99s)
	for i := range rounds {
		r := &rounds[i]
		run, ok := r.Find(Direct, W1)
		switch {
		case !ok:
			r.Dropped, r.DropReason = true, "D's W1 run missing or invalid"
		case run.Result.Latency.P99 > OutlierFactor*med:
			r.Dropped = true
			r.DropReason = fmt.Sprintf("D's W1 p99 %.0f µs > %.0f× median %.0f µs", run.Result.Latency.P99, OutlierFactor, med)
		default:
			r.Dropped, r.DropReason = false, ""
		}
	}
}

// Median of xs (mean of the middle two for an even count); NaN if empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Stat is one figure across the kept rounds.
type Stat struct {
	Median, Min, Max float64
	// N is the number of rounds that gave a value.
	N int
}

// Across computes f in every kept round that gives a value.
func Across(rounds []Round, f func(r *Round) (float64, bool)) Stat {
	var xs []float64
	for i := range rounds {
		if rounds[i].Dropped {
			continue
		}
		if v, ok := f(&rounds[i]); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return Stat{Median: Median(xs), Min: slices.Min(xs), Max: slices.Max(xs), N: len(xs)}
}

// Format writes s as "median (min–max)" with the given decimals, the range
// left out for a single round, and "n/a" when no round gave a value.
func (s Stat) Format(decimals int) string {
	if s.N == 0 {
		return "n/a"
	}
	m := fmt.Sprintf("%.*f", decimals, s.Median)
	if s.N == 1 {
		return m
	}
	return fmt.Sprintf("%s (%.*f–%.*f)", m, decimals, s.Min, decimals, s.Max)
}

// Metric functions of a round. Each reports false where the round lacks a
// valid value (the run is missing or invalid, or a ratio's denominator is
// not positive).

// percentile picks p50, p90 or p99 of a run's latency summary.
func percentile(run *Run, p int) float64 {
	l := run.Result.Latency
	switch p {
	case 50:
		return l.P50
	case 90:
		return l.P90
	default:
		return l.P99
	}
}

// Latency is config's latency percentile p (50, 90, 99) in µs.
func Latency(config, workload string, p int) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		run, ok := r.Find(config, workload)
		if !ok {
			return 0, false
		}
		return percentile(run, p), true
	}
}

// Added is config's latency percentile p minus Direct's, in µs.
func Added(config, workload string, p int) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		run, ok1 := r.Find(config, workload)
		base, ok2 := r.Find(Direct, workload)
		if !ok1 || !ok2 {
			return 0, false
		}
		return percentile(run, p) - percentile(base, p), true
	}
}

// AddedRatio is config's added latency over ref's (both against Direct).
func AddedRatio(config, ref, workload string, p int) func(*Round) (float64, bool) {
	return ratio(Added(config, workload, p), Added(ref, workload, p))
}

// CPU is config's proxy CPU time per request in µs.
func CPU(config, workload string) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		run, ok := r.Find(config, workload)
		if !ok || run.CPUTicks <= 0 {
			return 0, false
		}
		return run.CPUUsPerReq, true
	}
}

// CPURatio is config's CPU per request over ref's.
func CPURatio(config, ref, workload string) func(*Round) (float64, bool) {
	return ratio(CPU(config, workload), CPU(ref, workload))
}

// RPS is config's achieved requests per second.
func RPS(config, workload string) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		run, ok := r.Find(config, workload)
		if !ok {
			return 0, false
		}
		return run.Result.AchievedRPS, true
	}
}

// RPSRatio is config's achieved throughput over ref's.
func RPSRatio(config, ref, workload string) func(*Round) (float64, bool) {
	return ratio(RPS(config, workload), RPS(ref, workload))
}

// Memory picks one of a process's memory figures, in MiB.
func Memory(config string, pick func(*Process) int64) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		p, ok := r.Process(config)
		if !ok || pick(p) <= 0 {
			return 0, false
		}
		return float64(pick(p)) / 1024, true
	}
}

// SpansPerRequest is the spans the sink received from config's process
// per request it answered.
func SpansPerRequest(config string) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		p, ok := r.Process(config)
		if !ok || p.Requests == 0 {
			return 0, false
		}
		return float64(p.Spans) / float64(p.Requests), true
	}
}

func ratio(num, den func(*Round) (float64, bool)) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		n, ok1 := num(r)
		d, ok2 := den(r)
		if !ok1 || !ok2 || d <= 0 {
			return 0, false
		}
		return n / d, true
	}
}
