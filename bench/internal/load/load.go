// Package load is the engine of the benchmark load generator: an open-loop
// mode that sends at a fixed rate and measures each request's latency from
// its intended send time (so a stalled server is charged for every request
// it delayed, with no coordinated omission), and a closed-loop mode that
// keeps a fixed number of requests in flight to find the maximum throughput.
//
// Every worker owns one connection (HTTP/1.1 keep-alive, h2c, WebSocket or
// a gRPC client connection), optionally through a forward proxy.
package load

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracecar/tracecar/bench/internal/hdr"
)

// Modes of [Options.Mode].
const (
	ModeOpen   = "open"   // fixed rate, latency from the intended send time
	ModeClosed = "closed" // fixed concurrency, as fast as answers come
)

// Protocols of [Options.Proto].
const (
	ProtoHTTP1 = "http1" // HTTP/1.1 with keep-alive
	ProtoH2C   = "h2c"   // HTTP/2 over cleartext, prior knowledge
	ProtoWS    = "ws"    // WebSocket binary messages, echoed
	ProtoGRPC  = "grpc"  // gRPC unary calls (grpc.testing.TestService/UnaryCall) over h2c
)

// GRPCMethod is the only call ProtoGRPC makes; it is the Result's Method.
const GRPCMethod = "/grpc.testing.TestService/UnaryCall"

// Marks passed to [Options.OnMark].
const (
	MarkStart = "start" // the measured window begins
	MarkStop  = "stop"  // the measured window ended and nothing is in flight
)

// MaxRateError is the largest share of failed requests a valid run may have.
const MaxRateError = 0.001

// MinRateShare is the smallest share of the target rate an open-loop run
// must achieve to be valid.
const MinRateShare = 0.98

// Options describe one run. Zero values mean the documented defaults.
type Options struct {
	// URL is the target: http://host:port/path, ws://… for ProtoWS, or
	// http://host:port (the path ignored) for ProtoGRPC.
	URL string
	// Method is the HTTP method; default GET, or POST when BodySize > 0.
	// ProtoGRPC always calls GRPCMethod.
	Method string
	// BodySize is the size of each request body, WebSocket message or gRPC
	// request payload, in bytes; default 0 (1024 for ProtoWS and ProtoGRPC).
	BodySize int
	// ExpectBytes, when positive, is the response body (or echoed message,
	// or gRPC response payload) size every answer must have; others count
	// as errors. 0 checks none.
	ExpectBytes int
	// Proto is ProtoHTTP1 (default), ProtoH2C, ProtoWS or ProtoGRPC.
	Proto string
	// Mode is ModeOpen (default) or ModeClosed.
	Mode string
	// Rate is the open-loop rate in requests per second; default 1000.
	Rate float64
	// Conns is the number of connections, one per worker; default 64.
	Conns int
	// Warmup is sent first and not measured; default 1s.
	Warmup time.Duration
	// Duration is the measured time; default 5s.
	Duration time.Duration
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
	// Proxy is a forward proxy URL (http://host:port) all requests go
	// through; empty for none. Not with ProtoGRPC.
	Proxy string
	// IdempotencyKeys sends a unique Idempotency-Key with every request.
	IdempotencyKeys bool
	// OnMark, when set, is called with MarkStart and MarkStop.
	OnMark func(mark string)
}

func (o *Options) defaults() error {
	if o.URL == "" {
		return errors.New("load: no URL")
	}
	if o.Proto == "" {
		o.Proto = ProtoHTTP1
	}
	if (o.Proto == ProtoWS || o.Proto == ProtoGRPC) && o.BodySize == 0 {
		o.BodySize = 1024
	}
	if o.Proto == ProtoGRPC {
		o.Method = GRPCMethod
	}
	if o.Method == "" {
		o.Method = "GET"
		if o.BodySize > 0 {
			o.Method = "POST"
		}
	}
	if o.Mode == "" {
		o.Mode = ModeOpen
	}
	if o.Rate == 0 {
		o.Rate = 1000
	}
	if o.Conns == 0 {
		o.Conns = 64
	}
	if o.Warmup == 0 {
		o.Warmup = time.Second
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.OnMark == nil {
		o.OnMark = func(string) {}
	}
	switch {
	case o.Mode != ModeOpen && o.Mode != ModeClosed:
		return fmt.Errorf("load: mode %q: want open or closed", o.Mode)
	case o.Proto != ProtoHTTP1 && o.Proto != ProtoH2C && o.Proto != ProtoWS && o.Proto != ProtoGRPC:
		return fmt.Errorf("load: proto %q: want http1, h2c, ws or grpc", o.Proto)
	case o.Proto == ProtoGRPC && o.Proxy != "":
		return errors.New("load: -proxy is for HTTP and WebSocket, not grpc")
	case o.Rate < 0 || o.Conns < 0 || o.Warmup < 0 || o.Duration < 0 || o.BodySize < 0:
		return errors.New("load: rate, conns, durations and body size must not be negative")
	}
	return nil
}

// Result is what one run measured.
type Result struct {
	Mode      string  `json:"mode"`
	Proto     string  `json:"proto"`
	URL       string  `json:"url"`
	Method    string  `json:"method"`
	Conns     int     `json:"conns"`
	TargetRPS float64 `json:"target_rps,omitempty"`
	DurationS float64 `json:"duration_s"`

	// Requests counts the measured requests (intended, or for closed loop
	// completed, inside the measured window); OK and Errors split them.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
	// Statuses counts the answers by HTTP status ("200") or, for gRPC, by
	// status code ("grpc OK").
	Statuses map[string]int64 `json:"statuses"`
	// ErrorSamples holds the first few distinct errors.
	ErrorSamples []string `json:"error_samples,omitempty"`
	// AchievedRPS is the measured requests over the time from the first
	// measured send to the last measured answer (open loop), or over the
	// window (closed loop).
	AchievedRPS float64 `json:"achieved_rps"`

	// Total counts every answer of the run, warm-up included.
	Total int64 `json:"total"`
	// WindowRequests counts every answer between MarkStart and MarkStop,
	// and WindowS is that time: the denominator of CPU per request.
	WindowRequests int64   `json:"window_requests"`
	WindowS        float64 `json:"window_s"`

	// Latency is from the intended send time (open loop) or the actual one
	// (closed loop); Service always from the actual one; Lag is how late
	// the open-loop sends left against their schedule.
	Latency hdr.Summary `json:"latency"`
	Service hdr.Summary `json:"service"`
	Lag     hdr.Summary `json:"lag"`
	// LatencyHist is Latency's distribution: [largest ns, count] pairs,
	// buckets at most 1 % wide.
	LatencyHist [][2]int64 `json:"latency_hist"`

	Valid         bool   `json:"valid"`
	InvalidReason string `json:"invalid_reason,omitempty"`
}

// recorder collects the workers' measurements under one lock: recording is
// cheap next to a request, and one histogram keeps memory small.
type recorder struct {
	mu       sync.Mutex
	latency  *hdr.Histogram
	service  *hdr.Histogram
	lag      *hdr.Histogram
	ok, errs int64
	statuses map[string]int64
	samples  []string
	window   int64 // answers after the start mark
	total    int64 // every answer
	lastDone time.Duration
}

func newRecorder() *recorder {
	return &recorder{latency: hdr.New(), service: hdr.New(), lag: hdr.New(), statuses: map[string]int64{}}
}

// outcome is one finished request, times relative to the run's start.
type outcome struct {
	due, sent, done time.Duration
	status          string // "" when no answer came
	err             error
}

func (r *recorder) record(o outcome, measured, inWindow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if inWindow {
		r.window++
	}
	if !measured {
		return
	}
	r.lastDone = max(r.lastDone, o.done)
	r.latency.Record(o.done - o.due)
	r.service.Record(o.done - o.sent)
	r.lag.Record(o.sent - o.due)
	if o.status != "" {
		r.statuses[o.status]++
	}
	if o.err != nil {
		r.errs++
		if msg := o.err.Error(); len(r.samples) < 5 && !contains(r.samples, msg) {
			r.samples = append(r.samples, msg)
		}
		return
	}
	r.ok++
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Run performs one run and returns its result. It returns an error only
// when the run could not start (bad options, no connection); a run that
// failed to sustain its rate or saw errors is a Result with Valid false.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	workers := make([]doer, o.Conns)
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.close()
			}
		}
	}()
	for i := range workers {
		w, err := newDoer(ctx, &o, i)
		if err != nil {
			return nil, err
		}
		workers[i] = w
	}
	rec := newRecorder()
	var window time.Duration
	if o.Mode == ModeOpen {
		window = runOpen(ctx, &o, workers, rec)
	} else {
		window = runClosed(ctx, &o, workers, rec)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return result(&o, rec, window), nil
}

// runOpen sends on a fixed schedule: request i is due at i/Rate. A
// dispatcher hands due times to the workers through a queue long enough
// for the whole run, so it never waits for a busy worker; a request that
// waits in the queue is charged that wait.
//
// The dispatcher sleeps on its own thread (see pacer); it needs a P of its
// own to hand a job over without waiting for the workers, so the run has
// at least two, whatever the CPUs it may use.
func runOpen(ctx context.Context, o *Options, workers []doer, rec *recorder) time.Duration {
	if prev := runtime.GOMAXPROCS(0); prev < 2 {
		runtime.GOMAXPROCS(2)
		defer runtime.GOMAXPROCS(prev)
	}
	total := int(o.Rate * (o.Warmup + o.Duration).Seconds())
	jobs := make(chan time.Duration, min(total+1, 1<<22))
	start := time.Now()
	var markedAt atomic.Int64 // time.Duration of the start mark; 0 before it
	var wg sync.WaitGroup
	var seq sync.Mutex
	next := 0
	for _, w := range workers {
		wg.Go(func() {
			for due := range jobs {
				seq.Lock()
				n := next
				next++
				seq.Unlock()
				sent := time.Since(start)
				status, err := w.do(ctx, n)
				done := time.Since(start)
				m := time.Duration(markedAt.Load())
				rec.record(outcome{due: due, sent: sent, done: done, status: status, err: err},
					due >= o.Warmup, m > 0 && done >= m)
			}
		})
	}
	p, done := newPacer()
	defer done()
	interval := float64(time.Second) / o.Rate
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := time.Duration(float64(i) * interval)
		if wait := due - time.Since(start); wait > 0 {
			p.sleep(wait)
		}
		if due >= o.Warmup && markedAt.Load() == 0 {
			markedAt.Store(int64(max(time.Since(start), 1)))
			o.OnMark(MarkStart)
		}
		jobs <- due
	}
	close(jobs)
	wg.Wait()
	end := time.Since(start)
	o.OnMark(MarkStop)
	return end - time.Duration(markedAt.Load())
}

// runClosed keeps every worker busy until the end of the run.
func runClosed(ctx context.Context, o *Options, workers []doer, rec *recorder) time.Duration {
	start := time.Now()
	warmEnd, end := o.Warmup, o.Warmup+o.Duration
	var marked sync.Once
	var markedAt time.Duration
	markTimer := time.AfterFunc(warmEnd, func() {
		marked.Do(func() {
			markedAt = time.Since(start)
			o.OnMark(MarkStart)
		})
	})
	defer markTimer.Stop()
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				sent := time.Since(start)
				if sent >= end {
					return
				}
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				status, err := w.do(ctx, i)
				done := time.Since(start)
				measured := sent >= warmEnd && done <= end
				rec.record(outcome{due: sent, sent: sent, done: done, status: status, err: err},
					measured, done >= warmEnd)
			}
		})
	}
	wg.Wait()
	marked.Do(func() { markedAt = warmEnd }) // a run cancelled before the mark
	stop := time.Since(start)
	o.OnMark(MarkStop)
	return stop - markedAt
}

func result(o *Options, rec *recorder, window time.Duration) *Result {
	r := &Result{
		Mode: o.Mode, Proto: o.Proto, URL: o.URL, Method: o.Method, Conns: o.Conns,
		DurationS:      o.Duration.Seconds(),
		OK:             rec.ok,
		Errors:         rec.errs,
		Requests:       rec.ok + rec.errs,
		Statuses:       rec.statuses,
		ErrorSamples:   rec.samples,
		Total:          rec.total,
		WindowRequests: rec.window,
		WindowS:        window.Seconds(),
		Latency:        rec.latency.Summarize(),
		Service:        rec.service.Summarize(),
		Lag:            rec.lag.Summarize(),
		LatencyHist:    rec.latency.Buckets(0.01),
		Valid:          true,
	}
	if o.Mode == ModeOpen {
		r.TargetRPS = o.Rate
		if span := rec.lastDone - o.Warmup; span > 0 {
			r.AchievedRPS = float64(r.Requests) / span.Seconds()
		}
		if r.AchievedRPS < MinRateShare*o.Rate {
			r.Valid = false
			r.InvalidReason = fmt.Sprintf("achieved %.0f rps of %.0f (below %.0f %%)", r.AchievedRPS, o.Rate, 100*MinRateShare)
		}
		// The scheduled count is exact: a shortfall means requests were lost.
		if want := int64(o.Rate * o.Duration.Seconds()); r.Requests < want-1 {
			r.Valid = false
			r.InvalidReason = fmt.Sprintf("%d requests measured, %d scheduled", r.Requests, want)
		}
	} else {
		r.AchievedRPS = float64(r.Requests) / o.Duration.Seconds()
	}
	if r.Requests == 0 {
		r.Valid, r.InvalidReason = false, "no request measured"
	} else if share := float64(r.Errors) / float64(r.Requests); share > MaxRateError {
		r.Valid = false
		r.InvalidReason = fmt.Sprintf("%d of %d requests failed (%.2f %%)", r.Errors, r.Requests, 100*share)
	}
	return r
}
