// Package report turns the benchmark's rounds into its markdown table:
// every ratio is computed inside a round (a proxy against direct and nginx
// measured minutes apart would mostly measure the machine's mood), then
// summarised across the kept rounds as median and min–max. It also holds
// the declared outlier rule and the performance budget.
package report

import (
	"time"

	"github.com/tracecar/tracecar/bench/internal/load"
)

// Configurations: what the load goes through.
const (
	Direct   = "D"  // straight to the backend
	Nginx    = "N"  // nginx, one worker
	HAProxy  = "H"  // HAProxy, one thread
	TraceOff = "S0" // tracecar, OTEL_SDK_DISABLED=true
	TraceOn  = "S1" // tracecar, 100 % sampling exported over OTLP/HTTP
	Idem     = "S2" // S1's process, POST with a unique Idempotency-Key each
	Sampled  = "S3" // tracecar, parentbased_traceidratio 0.01
	Egress   = "E1" // tracecar's egress proxy (forward proxy), 100 % sampling
)

// Workloads: what the load is.
const (
	W1   = "W1"   // GET 1 KiB, open loop at the fixed rate
	W6   = "W6"   // GET 1 KiB, closed loop: maximum throughput
	Post = "POST" // POST /echo 1 KiB, open loop at the fixed rate
	H2C  = "H2C"  // W1 over h2c
	WS   = "WS"   // WebSocket 1 KiB echo, open loop at the fixed rate
	// GRPC is W4: gRPC unary calls with a 1 KiB payload echoed, over h2c,
	// open loop at the gRPC rate; GRPCMax is the same calls closed loop.
	// Selecting GRPC runs both.
	GRPC    = "GRPC"
	GRPCMax = "GRPC-MAX"
)

// Describe says what each configuration is, for the table's legend.
var Describe = map[string]string{
	Direct:   "direct to the backend (the baseline)",
	Nginx:    "nginx, `worker_processes 1`, upstream `keepalive`",
	HAProxy:  "HAProxy, `nbthread 1`, `http-reuse always`",
	TraceOff: "tracecar, tracing off (`OTEL_SDK_DISABLED=true`)",
	TraceOn:  "tracecar, tracing on, 100 % sampled, exported over OTLP/HTTP",
	Idem:     "S1's process, every POST with a unique `Idempotency-Key`",
	Sampled:  "tracecar, 1 % sampled (`parentbased_traceidratio` 0.01)",
	Egress:   "tracecar's egress proxy (the app's `HTTP_PROXY`), 100 % sampled",
}

// Run is one workload on one configuration in one round.
type Run struct {
	Config   string `json:"config"`
	Workload string `json:"workload"`
	// CPUTicks is the proxy process tree's utime+stime over the loadgen's
	// measured window, in clock ticks; CPUUsPerReq is that per answer in
	// the window, in µs. Both are 0 for Direct.
	CPUTicks    int64   `json:"cpu_ticks"`
	CPUUsPerReq float64 `json:"cpu_us_per_req"`
	// RSSKiB and HWMKiB are the proxy's VmRSS and VmHWM at the end of the
	// window.
	RSSKiB int64        `json:"rss_kib"`
	HWMKiB int64        `json:"hwm_kib"`
	Result *load.Result `json:"result"`
}

// Process is one proxy process's life in a round.
type Process struct {
	Config string `json:"config"`
	// IdleRSSKiB is VmRSS once ready, before any load.
	IdleRSSKiB int64 `json:"idle_rss_kib"`
	// LoadRSSKiB and LoadHWMKiB are VmRSS and VmHWM at the end of W1.
	LoadRSSKiB int64 `json:"load_rss_kib"`
	LoadHWMKiB int64 `json:"load_hwm_kib"`
	// Requests is the HTTP requests answered through it, warm-ups
	// included (WebSocket messages are not counted: a WebSocket is one
	// span); Spans is what the OTLP sink received from it by the time it
	// exited.
	Requests int64 `json:"requests"`
	Spans    int64 `json:"spans"`
}

// Round is one pass over every configuration, in a shuffled order.
type Round struct {
	Index      int       `json:"round"`
	Started    time.Time `json:"started"`
	LoadAvg    string    `json:"loadavg"`
	Order      []string  `json:"order"`
	Runs       []Run     `json:"runs"`
	Processes  []Process `json:"processes"`
	Dropped    bool      `json:"dropped"`
	DropReason string    `json:"drop_reason,omitempty"`
}

// Find returns the run of config and workload, if it was valid.
func (r *Round) Find(config, workload string) (*Run, bool) {
	for i := range r.Runs {
		run := &r.Runs[i]
		if run.Config == config && run.Workload == workload {
			return run, run.Result != nil && run.Result.Valid
		}
	}
	return nil, false
}

// Process returns the process record of config.
func (r *Round) Process(config string) (*Process, bool) {
	for i := range r.Processes {
		if r.Processes[i].Config == config {
			return &r.Processes[i], true
		}
	}
	return nil, false
}

// Meta describes the machine and the method, for the table's header.
type Meta struct {
	Date     time.Time `json:"date"`
	Mode     string    `json:"mode"`
	Machine  string    `json:"machine"`
	Versions []string  `json:"versions"`
	Rate     float64   `json:"rate"`
	Conns    int       `json:"conns"`
	Warmup   Duration  `json:"warmup"`
	Measure  Duration  `json:"measure"`
	Tput     Duration  `json:"tput"`
	// GRPCRate and GRPCConns are the gRPC workload's open-loop rate and
	// client connections (both loops); 0 when it did not run.
	GRPCRate  float64 `json:"grpc_rate,omitempty"`
	GRPCConns int     `json:"grpc_conns,omitempty"`
	// Elapsed is the whole run's wall time.
	Elapsed Duration `json:"elapsed"`
	Notes   []string `json:"notes"`
}

// Duration is a time.Duration that reads as "1.5s" in JSON.
type Duration time.Duration

// MarshalText writes d as time.Duration's String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

func (d Duration) String() string { return time.Duration(d).String() }
