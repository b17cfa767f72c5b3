package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tracecar/tracecar/bench/internal/load"
)

// Render writes the results as markdown: header (machine, method, rules,
// limits), one table per workload, tracing cost, and the budget.
func Render(w io.Writer, meta Meta, rounds []Round) {
	kept, dropped := 0, 0
	for _, r := range rounds {
		if r.Dropped {
			dropped++
		} else {
			kept++
		}
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## tracecar benchmark (%s)\n\n", meta.Mode)
	p("- Date: %s; whole run %s.\n", meta.Date.UTC().Format("2006-01-02 15:04 MST"), meta.Elapsed)
	p("- Machine: %s.\n", meta.Machine)
	p("- Versions: %s.\n", strings.Join(meta.Versions, ", "))
	p("- Rounds: %d kept, %d dropped. Outlier rule, declared before running: %s.\n", kept, dropped, OutlierRule)
	for _, r := range rounds {
		if r.Dropped {
			p("  - round %d dropped: %s.\n", r.Index, r.DropReason)
		}
	}
	p("- Method: every configuration in every round, in a new shuffled order each round; the proxy pinned to CPU 1 "+
		"with one worker (GOMAXPROCS=1, nginx `worker_processes 1`, HAProxy `nbthread 1`); load generator, backend and "+
		"OTLP sink on CPU 0. Open loop at %.0f rps over %d keep-alive connections, %s warm-up then %s measured, latency "+
		"from the intended send time (no coordinated omission); closed loop (W6) %d connections for %s. "+
		"Figures are computed inside each round, then shown as median (min–max) across kept rounds.\n",
		meta.Rate, meta.Conns, meta.Warmup, meta.Measure, meta.Conns, meta.Tput)
	p("- CPU: utime+stime of the proxy's process tree (/proc/<pid>/stat, 10 ms ticks) over the measured window, " +
		"per answered request. RSS: VmRSS/VmHWM summed over the tree (nginx: master and worker).\n")
	p("- Limits: loopback only, no TLS, one upstream host, no real network; access logs off in every proxy; " +
		"the load generator and backend share one core, so the direct baseline's maximum throughput is bounded " +
		"by that core. Published mesh numbers include mTLS and networks.\n")
	var loads []string
	for _, r := range rounds {
		if f := strings.Fields(r.LoadAvg); len(f) > 0 {
			loads = append(loads, fmt.Sprintf("r%d %s", r.Index, f[0]))
		}
	}
	if len(loads) > 0 {
		p("- Load average (1 min) at each round's start: %s.\n", strings.Join(loads, ", "))
	}
	if lag := scheduleLag(rounds); lag.N > 0 {
		p("- Load generator schedule lag (actual − intended send time, p50 of each open-loop run): %s µs; "+
			"it is part of every configuration's latency alike and cancels out of the added latency.\n", lag.Format(0))
	}
	for _, n := range meta.Notes {
		p("- %s\n", n)
	}
	p("\nConfigurations: ")
	var legend []string
	for _, c := range []string{Direct, Nginx, HAProxy, TraceOff, TraceOn, Idem, Sampled, Egress} {
		legend = append(legend, fmt.Sprintf("**%s** %s", c, Describe[c]))
	}
	p("%s.\n", strings.Join(legend, "; "))

	configs := presentConfigs(rounds)
	latencyTable(w, rounds, W1, fmt.Sprintf("W1: GET 1 KiB, HTTP/1.1, %.0f rps open loop", meta.Rate), configs, true)
	throughputTable(w, rounds, configs)
	tracingTable(w, rounds)
	latencyTable(w, rounds, Post, fmt.Sprintf("POST /echo 1 KiB, %.0f rps open loop (S2: unique Idempotency-Key per request)", meta.Rate), configs, false)
	latencyTable(w, rounds, H2C, fmt.Sprintf("H2C: GET 1 KiB over h2c (prior knowledge), %.0f rps open loop", meta.Rate), configs, false)
	latencyTable(w, rounds, WS, fmt.Sprintf("WS: WebSocket 1 KiB echo, %.0f messages/s open loop", meta.Rate), configs, false)
	grpcTable(w, rounds, meta, configs)
	budgetTable(w, rounds)
	invalidRuns(w, rounds)
}

// scheduleLag summarises the open-loop runs' median schedule lag.
func scheduleLag(rounds []Round) Stat {
	var xs []float64
	for _, r := range rounds {
		for _, run := range r.Runs {
			if run.Result != nil && run.Result.Valid && run.Result.Mode == load.ModeOpen {
				xs = append(xs, run.Result.Lag.P50)
			}
		}
	}
	if len(xs) == 0 {
		return Stat{}
	}
	return Stat{Median: Median(xs), Min: slices.Min(xs), Max: slices.Max(xs), N: len(xs)}
}

// presentConfigs lists the configurations any round ran, in legend order.
func presentConfigs(rounds []Round) []string {
	seen := map[string]bool{}
	for _, r := range rounds {
		for _, run := range r.Runs {
			seen[run.Config] = true
		}
	}
	var out []string
	for _, c := range []string{Direct, Nginx, HAProxy, TraceOff, TraceOn, Idem, Sampled, Egress} {
		if seen[c] {
			out = append(out, c)
		}
	}
	return out
}

// ran reports whether any round has a run of config and workload.
func ran(rounds []Round, config, workload string) bool {
	for i := range rounds {
		if run, _ := rounds[i].Find(config, workload); run != nil {
			return true
		}
	}
	return false
}

func latencyTable(w io.Writer, rounds []Round, workload, title string, configs []string, memory bool) {
	var rows []string
	for _, c := range configs {
		if ran(rounds, c, workload) {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### %s\n\n", title)
	head := "| config | p50 µs | p99 µs | added p50 µs | added p90 µs | added p99 µs | CPU µs/req | CPU × nginx |"
	sep := "|---|---|---|---|---|---|---|---|"
	if memory {
		head += " RSS idle MiB | RSS load MiB | peak RSS MiB | budget |"
		sep += "---|---|---|---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for _, c := range rows {
		cells := []string{c,
			Across(rounds, Latency(c, workload, 50)).Format(0),
			Across(rounds, Latency(c, workload, 99)).Format(0)}
		if c == Direct {
			cells = append(cells, "—", "—", "—", "—", "—")
		} else {
			cells = append(cells,
				Across(rounds, Added(c, workload, 50)).Format(0),
				Across(rounds, Added(c, workload, 90)).Format(0),
				Across(rounds, Added(c, workload, 99)).Format(0),
				Across(rounds, CPU(c, workload)).Format(1),
				Across(rounds, CPURatio(c, Nginx, workload)).Format(2))
		}
		if memory {
			if c == Direct {
				cells = append(cells, "—", "—", "—", "")
			} else {
				cells = append(cells,
					Across(rounds, Memory(c, func(p *Process) int64 { return p.IdleRSSKiB })).Format(1),
					Across(rounds, Memory(c, func(p *Process) int64 { return p.LoadRSSKiB })).Format(1),
					Across(rounds, Memory(c, func(p *Process) int64 { return p.LoadHWMKiB })).Format(1),
					budgetCell(rounds, c))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// budgetCell summarises the budget in the row of TraceOn, where it applies.
func budgetCell(rounds []Round, config string) string {
	if config != TraceOn {
		return ""
	}
	var failed []string
	unknown := 0
	for _, c := range Budget {
		switch _, v := c.Judge(rounds); v {
		case Fail:
			failed = append(failed, c.Name)
		case Unknown:
			unknown++
		}
	}
	switch {
	case len(failed) > 0:
		return fmt.Sprintf("FAIL %d of %d (see budget)", len(failed), len(Budget))
	case unknown > 0:
		return fmt.Sprintf("pass %d, n/a %d", len(Budget)-unknown, unknown)
	}
	return "pass"
}

func throughputTable(w io.Writer, rounds []Round, configs []string) {
	var rows []string
	for _, c := range configs {
		if ran(rounds, c, W6) {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### W6: maximum throughput, GET 1 KiB, closed loop\n\n")
	fmt.Fprintln(w, "| config | rps | × direct | × nginx | CPU µs/req | p50 µs | p99 µs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range rows {
		cpu := "—"
		if c != Direct {
			cpu = Across(rounds, CPU(c, W6)).Format(1)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", c,
			Across(rounds, RPS(c, W6)).Format(0),
			Across(rounds, RPSRatio(c, Direct, W6)).Format(2),
			Across(rounds, RPSRatio(c, Nginx, W6)).Format(2),
			cpu,
			Across(rounds, Latency(c, W6, 50)).Format(0),
			Across(rounds, Latency(c, W6, 99)).Format(0))
	}
}

// grpcTable is W4: latency and CPU at the gRPC rate, then maximum
// throughput closed loop, one row per configuration, and the gRPC targets.
func grpcTable(w io.Writer, rounds []Round, meta Meta, configs []string) {
	var rows []string
	for _, c := range configs {
		if ran(rounds, c, GRPC) || ran(rounds, c, GRPCMax) {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### GRPC: gRPC unary 1 KiB echo over h2c, %.0f calls/s open loop and closed loop, %d client connections\n\n",
		meta.GRPCRate, meta.GRPCConns)
	fmt.Fprintln(w, "N is nginx `grpc_pass grpc://` behind a cleartext `listen … http2`, H HAProxy `proto h2` on bind and server; "+
		"the calls are grpc.testing.TestService/UnaryCall, one in flight per connection. Max columns are the closed loop.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| config | p50 µs | p99 µs | added p50 µs | added p99 µs | CPU µs/call | CPU × nginx | max calls/s | max × direct | max CPU µs/call |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range rows {
		cells := []string{c,
			Across(rounds, Latency(c, GRPC, 50)).Format(0),
			Across(rounds, Latency(c, GRPC, 99)).Format(0)}
		if c == Direct {
			cells = append(cells, "—", "—", "—", "—", Across(rounds, RPS(c, GRPCMax)).Format(0), "—", "—")
		} else {
			cells = append(cells,
				Across(rounds, Added(c, GRPC, 50)).Format(0),
				Across(rounds, Added(c, GRPC, 99)).Format(0),
				Across(rounds, CPU(c, GRPC)).Format(1),
				Across(rounds, CPURatio(c, Nginx, GRPC)).Format(2),
				Across(rounds, RPS(c, GRPCMax)).Format(0),
				Across(rounds, RPSRatio(c, Direct, GRPCMax)).Format(2),
				Across(rounds, CPU(c, GRPCMax)).Format(1))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	if !ran(rounds, TraceOn, GRPC) {
		return
	}
	fmt.Fprintf(w, "\ngRPC targets, S1 (tracing on at 100 %%):\n\n")
	fmt.Fprintln(w, "| criterion | limit | measured | result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range GRPCTargets {
		s, v := c.Judge(rounds)
		fmt.Fprintf(w, "| %s | %s | %s %s | %s |\n", c.Name, c.Limit, s.Format(c.Decimal), c.Unit, v)
	}
}

func tracingTable(w io.Writer, rounds []Round) {
	if !ran(rounds, TraceOn, W1) || !ran(rounds, TraceOff, W1) {
		return
	}
	fmt.Fprintf(w, "\n### Tracing cost (ratios against S0, tracing off, in the same round)\n\n")
	fmt.Fprintln(w, "| figure | S1 (100 %) | S3 (1 %) |")
	fmt.Fprintln(w, "|---|---|---|")
	row := func(name string, f func(c string) func(*Round) (float64, bool), decimals int) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", name,
			Across(rounds, f(TraceOn)).Format(decimals), Across(rounds, f(Sampled)).Format(decimals))
	}
	row("max throughput (W6) × S0", func(c string) func(*Round) (float64, bool) { return RPSRatio(c, TraceOff, W6) }, 2)
	row("CPU per request (W1) × S0", func(c string) func(*Round) (float64, bool) { return CPURatio(c, TraceOff, W1) }, 2)
	row("added p50 (W1) − S0's, µs", func(c string) func(*Round) (float64, bool) {
		return diff(Added(c, W1, 50), Added(TraceOff, W1, 50))
	}, 0)
	row("added p99 (W1) − S0's, µs", func(c string) func(*Round) (float64, bool) {
		return diff(Added(c, W1, 99), Added(TraceOff, W1, 99))
	}, 0)
	row("spans received per HTTP request (whole process life)", SpansPerRequest, 3)
}

func diff(a, b func(*Round) (float64, bool)) func(*Round) (float64, bool) {
	return func(r *Round) (float64, bool) {
		x, ok1 := a(r)
		y, ok2 := b(r)
		return x - y, ok1 && ok2
	}
}

func budgetTable(w io.Writer, rounds []Round) {
	if !ran(rounds, TraceOn, W1) {
		return
	}
	fmt.Fprintf(w, "\n### Budget: S1 (tracing on at 100 %%), W1, one core\n\n")
	fmt.Fprintln(w, "| criterion | limit | measured | result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range Budget {
		s, v := c.Judge(rounds)
		fmt.Fprintf(w, "| %s | %s | %s %s | %s |\n", c.Name, c.Limit, s.Format(c.Decimal), c.Unit, v)
	}
}

func invalidRuns(w io.Writer, rounds []Round) {
	var lines []string
	for _, r := range rounds {
		for _, run := range r.Runs {
			switch {
			case run.Result == nil:
				lines = append(lines, fmt.Sprintf("round %d %s %s: no result", r.Index, run.Config, run.Workload))
			case !run.Result.Valid:
				lines = append(lines, fmt.Sprintf("round %d %s %s: %s", r.Index, run.Config, run.Workload, run.Result.InvalidReason))
			}
		}
	}
	if len(lines) == 0 {
		fmt.Fprintf(w, "\nEvery run was valid (achieved rate ≥ 98 %% of target, errors ≤ 0.1 %%).\n")
		return
	}
	fmt.Fprintf(w, "\nInvalid runs, left out of the figures (achieved rate < 98 %% of target, or errors > 0.1 %%):\n\n")
	for _, l := range lines {
		fmt.Fprintf(w, "- %s\n", l)
	}
}
