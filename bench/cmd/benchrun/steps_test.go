package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracecar/tracecar/bench/internal/report"
)

// TestGRPCSteps: GRPC runs open then closed loop on every configuration
// but the sampled and egress ones, after the workloads listed before it.
func TestGRPCSteps(t *testing.T) {
	h := &harness{opts: &options{workloads: []string{report.W1, report.GRPC}}}
	for _, config := range []string{report.Direct, report.Nginx, report.HAProxy, report.TraceOff, report.TraceOn} {
		var got []string
		for _, st := range h.stepsOf(config) {
			if st.recordAs != config || st.keys {
				t.Errorf("%s: step %+v recorded as another configuration or with keys", config, st)
			}
			got = append(got, st.workload)
		}
		if want := []string{report.W1, report.GRPC, report.GRPCMax}; !slices.Equal(got, want) {
			t.Errorf("%s: steps %v, want %v", config, got, want)
		}
	}
	for _, config := range []string{report.Sampled, report.Egress} {
		if steps := h.stepsOf(config); len(steps) != 1 || steps[0].workload != report.W1 {
			t.Errorf("%s: steps %+v, want W1 alone", config, steps)
		}
	}
}

// TestGRPCLoadArgs: the open loop goes at the gRPC rate and the closed
// loop for the throughput window, both on the gRPC connections and
// address, with 1 KiB payloads checked.
func TestGRPCLoadArgs(t *testing.T) {
	h := &harness{opts: &options{
		rate: 2000, conns: 64, grpcRate: 1000, grpcConns: 16,
		warmup: time.Second, measure: 5 * time.Second, tputWarmup: 500 * time.Millisecond, tput: 3 * time.Second,
	}}
	tg := &target{base: "http://127.0.0.1:1", grpc: "http://127.0.0.1:2"}
	for workload, want := range map[string]string{
		report.GRPC:    "-proto grpc -url http://127.0.0.1:2 -body 1024 -expect-bytes 1024 -rate 1000 -conns 16 -warmup 1s -duration 5s",
		report.GRPCMax: "-proto grpc -mode closed -url http://127.0.0.1:2 -body 1024 -expect-bytes 1024 -conns 16 -warmup 500ms -duration 3s",
	} {
		if got := strings.Join(h.loadArgs(tg, workload, false), " "); got != want {
			t.Errorf("%s: %s\nwant %s", workload, got, want)
		}
	}
}
