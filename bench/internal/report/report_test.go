package report

import (
	"math"
	"strings"
	"testing"

	"github.com/tracecar/tracecar/bench/internal/hdr"
	"github.com/tracecar/tracecar/bench/internal/load"
)

// run builds a valid run with the given percentiles (µs), rate and CPU.
func run(config, workload string, p50, p90, p99, rps, cpu float64) Run {
	return Run{
		Config: config, Workload: workload, CPUTicks: 1, CPUUsPerReq: cpu,
		Result: &load.Result{Valid: true, AchievedRPS: rps, Latency: hdr.Summary{P50: p50, P90: p90, P99: p99}},
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing must be NaN")
	}
}

// TestOutlierRule drops exactly the round whose direct p99 is above twice
// the median of the valid ones (300, 350, 360, 1000: 355), and the round
// without a valid direct run.
func TestOutlierRule(t *testing.T) {
	rounds := []Round{
		{Index: 1, Runs: []Run{run(Direct, W1, 100, 150, 300, 2000, 0)}},
		{Index: 2, Runs: []Run{run(Direct, W1, 100, 150, 350, 2000, 0)}},
		{Index: 3, Runs: []Run{run(Direct, W1, 100, 150, 1000, 2000, 0)}}, // > 2 × median 355
		{Index: 4, Runs: []Run{run(Direct, W1, 100, 150, 360, 2000, 0)}},
		{Index: 5, Runs: []Run{{Config: Direct, Workload: W1, Result: &load.Result{Valid: false}}}},
	}
	ApplyOutlierRule(rounds)
	want := []bool{false, false, true, false, true}
	for i, r := range rounds {
		if r.Dropped != want[i] {
			t.Errorf("round %d dropped=%v (%s), want %v", r.Index, r.Dropped, r.DropReason, want[i])
		}
	}
	if !strings.Contains(rounds[2].DropReason, "1000") {
		t.Errorf("drop reason %q should quote the p99", rounds[2].DropReason)
	}
}

// TestRatiosInsideRounds checks that ratios pair values of the same round
// before the median is taken: the median of ratios, not the ratio of
// medians.
func TestRatiosInsideRounds(t *testing.T) {
	rounds := []Round{
		{Runs: []Run{run(Direct, W1, 100, 0, 200, 2000, 0), run(Nginx, W1, 150, 0, 300, 2000, 50), run(TraceOn, W1, 200, 0, 400, 2000, 80)}},
		{Runs: []Run{run(Direct, W1, 300, 0, 600, 2000, 0), run(Nginx, W1, 320, 0, 620, 2000, 100), run(TraceOn, W1, 400, 0, 700, 2000, 150)}},
		{Runs: []Run{run(Direct, W1, 100, 0, 200, 2000, 0), run(Nginx, W1, 140, 0, 260, 2000, 40), run(TraceOn, W1, 160, 0, 300, 2000, 100)}},
	}
	added := Across(rounds, Added(TraceOn, W1, 50))
	if added.Median != 100 || added.Min != 60 || added.Max != 100 || added.N != 3 {
		t.Errorf("added p50 = %+v, want median 100, min 60, max 100", added)
	}
	// Added p50 ratios: 100/50 = 2, 100/20 = 5, 60/40 = 1.5.
	if r := Across(rounds, AddedRatio(TraceOn, Nginx, W1, 50)); r.Median != 2 || r.Min != 1.5 || r.Max != 5 {
		t.Errorf("added p50 ratio = %+v, want median 2 (1.5–5)", r)
	}
	// CPU ratios: 1.6, 1.5, 2.5.
	if r := Across(rounds, CPURatio(TraceOn, Nginx, W1)); r.Median != 1.6 {
		t.Errorf("CPU ratio median = %v, want 1.6", r.Median)
	}
	rounds[1].Dropped = true
	if r := Across(rounds, AddedRatio(TraceOn, Nginx, W1, 50)); r.N != 2 || r.Median != 1.75 {
		t.Errorf("with round 2 dropped: %+v, want 2 rounds, median 1.75", r)
	}
}

// TestRatioSkipsNonPositiveDenominator: nginx's added latency can be zero
// or negative in a noisy round; such a round gives no ratio.
func TestRatioSkipsNonPositiveDenominator(t *testing.T) {
	rounds := []Round{{Runs: []Run{run(Direct, W1, 100, 0, 0, 0, 0), run(Nginx, W1, 95, 0, 0, 0, 1), run(TraceOn, W1, 150, 0, 0, 0, 1)}}}
	if s := Across(rounds, AddedRatio(TraceOn, Nginx, W1, 50)); s.N != 0 || s.Format(2) != "n/a" {
		t.Errorf("ratio over a negative denominator = %+v (%s), want n/a", s, s.Format(2))
	}
}

func TestInvalidRunsAreLeftOut(t *testing.T) {
	bad := run(TraceOn, W1, 999, 0, 999, 1000, 999)
	bad.Result.Valid = false
	rounds := []Round{
		{Runs: []Run{run(Direct, W1, 100, 0, 0, 0, 0), bad}},
		{Runs: []Run{run(Direct, W1, 100, 0, 0, 0, 0), run(TraceOn, W1, 180, 0, 0, 0, 70)}},
	}
	if s := Across(rounds, Added(TraceOn, W1, 50)); s.N != 1 || s.Median != 80 {
		t.Errorf("added p50 = %+v, want only the valid round's 80", s)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		s    Stat
		want string
	}{
		{Stat{Median: 1.234, Min: 1, Max: 2, N: 3}, "1.23 (1.00–2.00)"},
		{Stat{Median: 5, Min: 5, Max: 5, N: 1}, "5.00"},
		{Stat{N: 0}, "n/a"},
	} {
		if got := tc.s.Format(2); got != tc.want {
			t.Errorf("Format(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestBudgetJudge(t *testing.T) {
	rounds := []Round{{
		Runs: []Run{
			run(Direct, W1, 100, 0, 200, 2000, 0), run(Nginx, W1, 150, 0, 300, 2000, 50), run(TraceOn, W1, 200, 0, 800, 2000, 90),
			run(Direct, W6, 0, 0, 0, 10000, 0), run(TraceOn, W6, 0, 0, 0, 6000, 40), run(TraceOff, W6, 0, 0, 0, 6500, 35),
		},
		Processes: []Process{{Config: TraceOn, IdleRSSKiB: 12 * 1024, LoadHWMKiB: 30 * 1024}},
	}}
	want := map[string]Verdict{
		"CPU per request":                           Pass, // 90 ≤ 100
		"CPU per request vs nginx (same round)":     Pass, // 1.8 ≤ 2
		"added p50 vs nginx's added p50":            Fail, // 100/50 = 2 > 1.5
		"added p99 vs nginx's added p99":            Fail, // 600/100 = 6 > 2.5
		"added p99":                                 Fail, // 600 > 500
		"max throughput vs direct (W6)":             Pass, // 0.6 ≥ 0.5
		"tracing on/off max throughput (S1/S0, W6)": Pass, // 0.923 ≥ 0.9
		"RSS under load (VmHWM after W1)":           Fail, // 30 > 25
		"RSS idle (VmRSS once ready)":               Pass, // 12 ≤ 15
	}
	for _, c := range Budget {
		_, v := c.Judge(rounds)
		if v != want[c.Name] {
			t.Errorf("%s: %s, want %s", c.Name, v, want[c.Name])
		}
	}
	if got := budgetCell(rounds, TraceOn); got != "FAIL 4 of 9 (see budget)" {
		t.Errorf("budget cell %q", got)
	}
}

// TestRender checks the table's skeleton: header facts, one row per
// configuration that ran, the dropped round and the invalid run listed.
func TestRender(t *testing.T) {
	invalid := run(Nginx, Post, 0, 0, 0, 1000, 0)
	invalid.Result.Valid, invalid.Result.InvalidReason = false, "achieved 1000 rps of 2000 (below 98 %)"
	rounds := []Round{
		{Index: 1, Runs: []Run{run(Direct, W1, 100, 120, 200, 2000, 0), run(TraceOn, W1, 220, 260, 400, 2000, 80), invalid}},
		{Index: 2, Runs: []Run{run(Direct, W1, 100, 120, 900, 2000, 0), run(TraceOn, W1, 230, 270, 990, 2000, 82)}},
		{Index: 3, Runs: []Run{run(Direct, W1, 110, 130, 210, 2000, 0), run(TraceOn, W1, 240, 280, 420, 2000, 84)}},
	}
	ApplyOutlierRule(rounds)
	var b strings.Builder
	Render(&b, Meta{Mode: "full", Machine: "2 CPUs", Versions: []string{"go1.26.8", "nginx/1.22.1"}, Rate: 2000, Conns: 64}, rounds)
	out := b.String()
	for _, want := range []string{
		"2 kept, 1 dropped",
		"round 2 dropped: D's W1 p99 900 µs",
		"nginx/1.22.1",
		"| D | 105 (100–110) |",
		"| S1 | 230 (220–240) | 410 (400–420) | 125 (120–130) |",
		"round 1 N POST: achieved 1000 rps of 2000",
		"loopback only, no TLS",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| H |") {
		t.Error("a configuration that never ran must have no row")
	}
}

// grpcRounds: two rounds of the gRPC workload on D, N and S1.
func grpcRounds() []Round {
	return []Round{
		{Index: 1, Runs: []Run{
			run(Direct, W1, 100, 0, 200, 2000, 0),
			run(Direct, GRPC, 200, 0, 400, 1000, 0), run(Nginx, GRPC, 300, 0, 600, 1000, 40), run(TraceOn, GRPC, 350, 0, 900, 1000, 50),
			run(Direct, GRPCMax, 0, 0, 0, 8000, 0), run(Nginx, GRPCMax, 0, 0, 0, 6000, 30), run(TraceOn, GRPCMax, 0, 0, 0, 4800, 45),
		}},
		{Index: 2, Runs: []Run{
			run(Direct, W1, 100, 0, 200, 2000, 0),
			run(Direct, GRPC, 220, 0, 420, 1000, 0), run(Nginx, GRPC, 300, 0, 640, 1000, 40), run(TraceOn, GRPC, 470, 0, 1000, 1000, 70),
			run(Direct, GRPCMax, 0, 0, 0, 9000, 0), run(Nginx, GRPCMax, 0, 0, 0, 6300, 30), run(TraceOn, GRPCMax, 0, 0, 0, 3600, 50),
		}},
	}
}

// TestGRPCTargets: added p50 150 and 250 (median 200, at the limit);
// throughput 0.6× and 0.4× direct (median 0.5, at the limit); CPU 1.25×
// and 1.75× nginx (median 1.5, at the limit): all pass. One more µs of
// added p50 in round 2 fails that target alone.
func TestGRPCTargets(t *testing.T) {
	rounds := grpcRounds()
	for _, c := range GRPCTargets {
		s, v := c.Judge(rounds)
		if v != Pass || s.N != 2 {
			t.Errorf("%s: %s over %d rounds (median %v), want pass over 2", c.Name, v, s.N, s.Median)
		}
	}
	rounds[1].Runs[3].Result.Latency.P50 = 472
	want := map[string]Verdict{
		"added p50":                                      Fail,
		"max throughput vs direct (closed loop)":         Pass,
		"CPU per call vs nginx `grpc_pass` (same round)": Pass,
	}
	for _, c := range GRPCTargets {
		if _, v := c.Judge(rounds); v != want[c.Name] {
			t.Errorf("%s: %s, want %s", c.Name, v, want[c.Name])
		}
	}
}

// TestRenderGRPC: the gRPC section has a row per configuration with its
// in-round ratios, D's maximum throughput, and the targets.
func TestRenderGRPC(t *testing.T) {
	rounds := grpcRounds()
	ApplyOutlierRule(rounds)
	var b strings.Builder
	Render(&b, Meta{Mode: "full", Rate: 2000, Conns: 64, GRPCRate: 1000, GRPCConns: 16}, rounds)
	out := b.String()
	for _, want := range []string{
		"### GRPC: gRPC unary 1 KiB echo over h2c, 1000 calls/s open loop and closed loop, 16 client connections",
		"| D | 210 (200–220) | 410 (400–420) | — | — | — | — | 8500 (8000–9000) | — | — |",
		"| N | 300 (300–300) | 620 (600–640) | 90 (80–100) | 210 (200–220) | 40.0 (40.0–40.0) | 1.00 (1.00–1.00) | 6150 (6000–6300) | 0.72 (0.70–0.75) | 30.0 (30.0–30.0) |",
		"| S1 | 410 (350–470) | 950 (900–1000) | 200 (150–250) | 540 (500–580) | 60.0 (50.0–70.0) | 1.50 (1.25–1.75) | 4200 (3600–4800) | 0.50 (0.40–0.60) | 47.5 (45.0–50.0) |",
		"| added p50 | ≤ 200 µs | 200 (150–250) µs | pass |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| H |") {
		t.Error("a configuration that never ran must have no row")
	}
	var none strings.Builder
	Render(&none, Meta{}, []Round{{Runs: []Run{run(Direct, W1, 100, 0, 200, 2000, 0)}}})
	if strings.Contains(none.String(), "gRPC") {
		t.Error("a run without the gRPC workload must have no gRPC section")
	}
}
