// Command benchrun is tracecar's benchmark harness (`make bench`,
// `make bench-quick`). It runs the sidecar side by side with a direct
// connection, nginx and HAProxy, on loopback, in rounds whose order is
// shuffled, and writes a markdown table of in-round ratios with the raw
// per-round JSON beside it.
//
// Each round starts every configuration in turn, the proxy pinned to CPU 1
// with one worker, the load generator, backend and OTLP sink on CPU 0; runs
// its workloads (W1 open loop at a fixed rate, W6 closed loop, POST with and
// without Idempotency-Key, optionally h2c, WebSocket and gRPC unary); samples the
// proxy's CPU time and memory from /proc; then stops it. Every process it
// starts is stopped on exit, on Ctrl-C and on error, and the whole run
// stops itself at -deadline.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tracecar/tracecar/bench/internal/procstat"
	"github.com/tracecar/tracecar/bench/internal/report"
)

// options are the command line.
type options struct {
	quick                                  bool
	rounds                                 int
	rate, grpcRate                         float64
	conns, grpcConns                       int
	warmup, measure, tputWarmup, tput      time.Duration
	settle, deadline                       time.Duration
	configs, workloads                     []string
	sidecar, binDir, outDir, name, repoDir string
	install                                bool
}

func parseFlags() (*options, error) {
	o := &options{}
	var configs, workloads string
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 2 short rounds, written as quick.md (defaults below change)")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds (default 5, quick 2)")
	flag.Float64Var(&o.rate, "rate", 2000, "open-loop rate, requests per second")
	flag.IntVar(&o.conns, "conns", 64, "connections of every workload but GRPC")
	flag.Float64Var(&o.grpcRate, "grpc-rate", 1000, "GRPC open-loop rate, calls per second")
	flag.IntVar(&o.grpcConns, "grpc-conns", 16, "GRPC client connections, one call in flight on each")
	flag.DurationVar(&o.warmup, "warmup", 0, "open-loop warm-up (default 1s, quick 500ms)")
	flag.DurationVar(&o.measure, "measure", 0, "open-loop measured window (default 5s, quick 1.5s)")
	flag.DurationVar(&o.tputWarmup, "tput-warmup", 0, "closed-loop warm-up (default 500ms, quick 300ms)")
	flag.DurationVar(&o.tput, "tput", 0, "closed-loop measured window (default 3s, quick 1s)")
	flag.DurationVar(&o.settle, "settle", 500*time.Millisecond, "pause after start-up before idle RSS is read")
	flag.DurationVar(&o.deadline, "deadline", 0, "the whole run stops by then, keeping the rounds done (default 10m, quick 4m)")
	flag.StringVar(&configs, "configs", "D,N,H,S0,S1,S3,E1", "configurations (S2 runs on S1's process)")
	flag.StringVar(&workloads, "workloads", "W1,W6,POST", "workloads: W1, W6, POST, H2C, WS, GRPC (open and closed loop)")
	flag.StringVar(&o.sidecar, "sidecar", "bin/sidecar", "the sidecar binary (built with go build when missing)")
	flag.StringVar(&o.binDir, "bin", "", "directory with loadgen, backend and otlpsink (built when missing)")
	flag.StringVar(&o.outDir, "out", "bench/results", "where the results go")
	flag.StringVar(&o.name, "name", "", "results file name without .md (default latest, quick quick)")
	flag.BoolVar(&o.install, "install", true, "install nginx and HAProxy with apt-get when missing")
	flag.Parse()
	pick := func(d *time.Duration, full, quick time.Duration) {
		if *d == 0 {
			*d = full
			if o.quick {
				*d = quick
			}
		}
	}
	pick(&o.warmup, time.Second, 500*time.Millisecond)
	pick(&o.measure, 5*time.Second, 1500*time.Millisecond)
	pick(&o.tputWarmup, 500*time.Millisecond, 300*time.Millisecond)
	pick(&o.tput, 3*time.Second, time.Second)
	pick(&o.deadline, 10*time.Minute, 4*time.Minute)
	if o.quick && o.settle == 500*time.Millisecond {
		o.settle = 300 * time.Millisecond
	}
	if o.rounds == 0 {
		o.rounds = 5
		if o.quick {
			o.rounds = 2
		}
	}
	if o.name == "" {
		o.name = "latest"
		if o.quick {
			o.name = "quick"
		}
	}
	o.configs = splitList(configs)
	o.workloads = splitList(workloads)
	known := []string{report.Direct, report.Nginx, report.HAProxy, report.TraceOff, report.TraceOn, report.Sampled, report.Egress}
	for _, c := range o.configs {
		if !slices.Contains(known, c) {
			return nil, fmt.Errorf("-configs: unknown %q (want some of %s)", c, strings.Join(known, ","))
		}
	}
	if !slices.Contains(o.configs, report.Direct) {
		return nil, errors.New("-configs: D is the baseline of every ratio and must be included")
	}
	for _, w := range o.workloads {
		if !slices.Contains([]string{report.W1, report.W6, report.Post, report.H2C, report.WS, report.GRPC}, w) {
			return nil, fmt.Errorf("-workloads: unknown %q (want some of W1,W6,POST,H2C,WS,GRPC)", w)
		}
	}
	if !slices.Contains(o.workloads, report.W1) {
		return nil, errors.New("-workloads: W1 carries the outlier rule and must be included")
	}
	if o.rounds < 1 || o.rate <= 0 || o.conns < 1 || o.grpcRate <= 0 || o.grpcConns < 1 {
		return nil, errors.New("-rounds, -rate, -conns, -grpc-rate and -grpc-conns must be positive")
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	o.repoDir = wd
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.ToUpper(strings.TrimSpace(f)); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// harness is the state of one benchmark run.
type harness struct {
	opts                  *options
	sup                   *supervisor
	tmp                   string
	bins                  map[string]string
	sidecar               string
	nginx, haproxy        string
	backendAddr, sinkAddr string
	clockTicks            int64
	notes                 []string
}

func (h *harness) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.notes = append(h.notes, msg)
	logf("note: %s", msg)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	err = run(ctx, o)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	began := time.Now()
	tmp, err := os.MkdirTemp("", "tracecar-bench-")
	if err != nil {
		return err
	}
	h := &harness{opts: o, sup: &supervisor{logDir: tmp}, tmp: tmp, clockTicks: procstat.ClockTicks()}
	defer h.sup.stopAll()
	failed := true
	defer func() {
		if failed {
			logf("logs kept in %s", tmp)
		} else {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := h.prepare(ctx); err != nil {
		return err
	}
	rounds := h.rounds(ctx)
	if errors.Is(ctx.Err(), context.Canceled) {
		return errors.New("interrupted: no results written")
	}
	if len(rounds) == 0 {
		return fmt.Errorf("no round completed: %w", context.Cause(ctx))
	}
	report.ApplyOutlierRule(rounds)
	meta := h.meta(began)
	if err := write(o, meta, rounds); err != nil {
		return err
	}
	failed = false
	return nil
}

// rounds runs the rounds, stopping early (with the rounds done) when the
// next one would not finish before the deadline or on Ctrl-C.
func (h *harness) rounds(ctx context.Context) []report.Round {
	var rounds []report.Round
	var longest time.Duration
	for i := 1; i <= h.opts.rounds; i++ {
		if dl, ok := ctx.Deadline(); ok && longest > 0 && time.Until(dl) < longest*11/10 {
			h.note("stopped after %d of %d rounds to stay within the %s deadline", i-1, h.opts.rounds, h.opts.deadline)
			break
		}
		start := time.Now()
		r, err := h.round(ctx, i)
		if err != nil {
			h.note("round %d abandoned: %v", i, err)
			break
		}
		rounds = append(rounds, *r)
		longest = max(longest, time.Since(start))
		logf("round %d/%d done in %s", i, h.opts.rounds, time.Since(start).Round(time.Second))
	}
	return rounds
}

// round runs every configuration once, in a shuffled order.
func (h *harness) round(ctx context.Context, index int) (*report.Round, error) {
	order := slices.Clone(h.opts.configs)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] }) //nolint:gosec // an order of runs, not a secret
	la, _ := os.ReadFile("/proc/loadavg")
	r := &report.Round{Index: index, Started: time.Now().UTC(), LoadAvg: strings.TrimSpace(string(la)), Order: order}
	logf("round %d/%d: order %s, loadavg %s", index, h.opts.rounds, strings.Join(order, " "), r.LoadAvg)
	for _, config := range order {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if err := h.runConfig(ctx, r, config); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			h.note("round %d %s: %v", index, config, err)
		}
	}
	return r, nil
}

// step is one workload run on a configuration's process.
type step struct {
	workload string
	recordAs string // the configuration the run is reported under
	keys     bool   // a unique Idempotency-Key on every request
}

// stepsOf lists what config runs, in order. POST runs on D and N (with
// keys, which they ignore: the same requests as S2) and twice on S1's
// process: without keys (S1) and with them (S2). GRPC runs open loop, then
// closed loop (GRPCMax).
func (h *harness) stepsOf(config string) []step {
	var out []step
	for _, w := range h.opts.workloads {
		switch w {
		case report.W1, report.W6:
			out = append(out, step{w, config, false})
		case report.Post:
			switch config {
			case report.Direct, report.Nginx:
				out = append(out, step{w, config, true})
			case report.TraceOn:
				out = append(out, step{w, config, false}, step{w, report.Idem, true})
			}
		case report.H2C, report.WS:
			if config != report.Egress && config != report.Sampled {
				out = append(out, step{w, config, false})
			}
		case report.GRPC:
			if config != report.Egress && config != report.Sampled {
				out = append(out, step{w, config, false}, step{report.GRPCMax, config, false})
			}
		}
	}
	return out
}

// runConfig starts config, measures its idle memory, runs its workloads
// and stops it, recording everything in r.
func (h *harness) runConfig(ctx context.Context, r *report.Round, config string) error {
	spansBefore := h.sinkSpans(ctx)
	t, err := h.startConfig(ctx, config)
	if err != nil {
		return err
	}
	proc := report.Process{Config: config}
	stopped := false
	stopProc := func() {
		if !stopped && t.proc != nil {
			h.sup.stop(t.proc, 5*time.Second)
		}
		stopped = true
	}
	defer stopProc()
	if t.proc != nil {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(h.opts.settle):
		}
		idle, err := procstat.Tree(t.proc.pid())
		if err != nil {
			return err
		}
		proc.IdleRSSKiB = idle.RSSKiB
	}
	var summary []string
	for _, st := range h.stepsOf(config) {
		workload := st.workload
		run, err := h.runLoad(ctx, t, workload, st.recordAs, st.keys)
		if err != nil {
			return err
		}
		r.Runs = append(r.Runs, run)
		if workload != report.WS { // a WebSocket is one span, not one per message
			proc.Requests += run.Result.Total
		}
		if workload == report.W1 {
			proc.LoadRSSKiB, proc.LoadHWMKiB = run.RSSKiB, run.HWMKiB
		}
		summary = append(summary, summarize(run))
	}
	stopProc()
	if t.proc != nil {
		proc.Spans = h.sinkSpans(ctx) - spansBefore
		r.Processes = append(r.Processes, proc)
	}
	logf("  %-2s %s", config, strings.Join(summary, "; "))
	return nil
}

func summarize(run report.Run) string {
	res := run.Result
	label := run.Workload
	if run.Config == report.Idem {
		label += "+key"
	}
	s := fmt.Sprintf("%s p50 %.0fµs p99 %.0fµs %.0frps", label, res.Latency.P50, res.Latency.P99, res.AchievedRPS)
	if run.CPUTicks > 0 {
		s += fmt.Sprintf(" cpu %.0fµs/req", run.CPUUsPerReq)
	}
	if !res.Valid {
		s += " INVALID: " + res.InvalidReason
	}
	return s
}

// write saves the markdown table and one JSON file per round.
func write(o *options, meta report.Meta, rounds []report.Round) error {
	if err := os.MkdirAll(o.outDir, 0o750); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(o.outDir, o.name+"-round-*.json"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	for _, r := range rounds {
		b, err := json.Marshal(struct {
			Meta  report.Meta  `json:"meta"`
			Round report.Round `json:"round"`
		}{meta, r})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.outDir, fmt.Sprintf("%s-round-%d.json", o.name, r.Index)), b, 0o600); err != nil {
			return err
		}
	}
	var md strings.Builder
	report.Render(&md, meta, rounds)
	path := filepath.Join(o.outDir, o.name+".md")
	if err := os.WriteFile(path, []byte(md.String()), 0o600); err != nil {
		return err
	}
	logf("wrote %s and %d round files", path, len(rounds))
	fmt.Print(md.String())
	return nil
}
