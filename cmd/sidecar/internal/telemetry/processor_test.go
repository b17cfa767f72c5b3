package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func stubSpan(flags trace.TraceFlags) sdktrace.ReadOnlySpan {
	return tracetest.SpanStub{
		Name: "stub",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags,
		}),
	}.Snapshot()
}

func testProcessorConfig(queueSize, batchSize int) processorConfig {
	return processorConfig{
		queueSize: queueSize,
		batchSize: batchSize,
		interval:  time.Hour,
		timeout:   time.Minute,
		logger:    slog.New(slog.DiscardHandler),
		now:       time.Now,
	}
}

// heldProcessor returns a processor exporting over OTLP/HTTP to a gated
// receiver, with its export goroutine held inside the first export: nothing
// leaves the queue until the test ends.
func heldProcessor(tb testing.TB, queueSize int) *processor {
	tb.Helper()
	r := newReceiver(true)
	endpoint := startReceiver(tb, ProtocolHTTPProtobuf, r)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	if err != nil {
		tb.Fatal(err)
	}
	p := newProcessor(exp, testProcessorConfig(queueSize, 1))
	tb.Cleanup(func() {
		// An ended context aborts the held export and fails the queue
		// without sending it.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = p.Shutdown(ctx)
	})
	p.OnEnd(stubSpan(trace.FlagsSampled))
	waitFor(tb, "the first export to reach the receiver", r.arrived)
	return p
}

func TestOnEndDoesNotAllocate(t *testing.T) {
	p := heldProcessor(t, 4096)
	s := stubSpan(trace.FlagsSampled)

	if allocs := testing.AllocsPerRun(1000, func() { p.OnEnd(s) }); allocs != 0 {
		t.Errorf("OnEnd (queued) allocates %v times per call", allocs)
	}
	if got := len(p.queue); got != 1001 { // AllocsPerRun adds a warm-up call
		t.Fatalf("queue holds %d spans, want 1001", got)
	}
	for len(p.queue) < cap(p.queue) {
		p.OnEnd(s)
	}
	if allocs := testing.AllocsPerRun(1000, func() { p.OnEnd(s) }); allocs != 0 {
		t.Errorf("OnEnd (queue full) allocates %v times per call", allocs)
	}
	if got := testutil.ToFloat64(p.queueFull); got != 1001 {
		t.Errorf("queue_full drops = %v, want 1001", got)
	}
}

func TestOnEndSkipsUnsampledSpans(t *testing.T) {
	p := heldProcessor(t, 4)
	p.OnEnd(stubSpan(0))
	if got := len(p.queue); got != 0 {
		t.Errorf("an unsampled span was queued (queue length %d)", got)
	}
}

func TestForceFlushExportsQueue(t *testing.T) {
	isolateEnv(t)
	r := newReceiver(false)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, ProtocolGRPC, r))
	tel := setup(t, Settings{Protocol: ProtocolGRPC, BatchSize: 2, ExportInterval: time.Hour})

	want := endSpans(tel.TracerProvider, "flushed", 5) // two full batches and one partial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.TracerProvider.(*sdktrace.TracerProvider).ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	spans, requests, _ := r.received()
	if len(spans) != len(want) || requests != 3 {
		t.Fatalf("after ForceFlush: %d spans in %d requests, want 5 in 3 batches of at most 2", len(spans), requests)
	}
	for i, s := range spans {
		if s.SpanID != want[i] {
			t.Errorf("span %d = %s, want %s", i, s.SpanID, want[i])
		}
	}
}

// BenchmarkOnEnd measures the request-path cost of ending a span.
func BenchmarkOnEnd(b *testing.B) {
	sampled := stubSpan(trace.FlagsSampled)
	b.Run("draining", func(b *testing.B) {
		// A worker empties the queue as fast as it can export to nowhere.
		p := newProcessor(tracetest.NewNoopExporter(), testProcessorConfig(DefaultQueueSize, DefaultBatchSize))
		b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
		b.ReportAllocs()
		for b.Loop() {
			p.OnEnd(sampled)
		}
	})
	b.Run("queue_full", func(b *testing.B) {
		p := heldProcessor(b, 64)
		for len(p.queue) < cap(p.queue) {
			p.OnEnd(sampled)
		}
		b.ReportAllocs()
		for b.Loop() {
			p.OnEnd(sampled)
		}
	})
	b.Run("unsampled", func(b *testing.B) {
		p := heldProcessor(b, 64)
		unsampled := stubSpan(0)
		b.ReportAllocs()
		for b.Loop() {
			p.OnEnd(unsampled)
		}
	})
}

func TestForceFlushCutShortKeepsQueue(t *testing.T) {
	isolateEnv(t)
	r := newReceiver(true)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, ProtocolHTTPProtobuf, r))
	reg := prometheus.NewRegistry()
	tel := setup(t, Settings{BatchSize: 1, ExportInterval: time.Hour, Registerer: reg})

	want := endSpans(tel.TracerProvider, "held", 1)
	waitFor(t, "the first export to reach the receiver", r.arrived)
	want = append(want, endSpans(tel.TracerProvider, "queued", 3)...)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tel.TracerProvider.(*sdktrace.TracerProvider).ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ForceFlush behind a held export: err = %v, want context.DeadlineExceeded", err)
	}
	if got := metricValue(t, reg, "tracecar_spans_dropped_total", reasonExportFailed); got != 0 {
		t.Errorf("a flush cut short dropped %v spans, want 0", got)
	}
	r.release()
	eventually(t, "all 4 spans exported", func() bool {
		return metricValue(t, reg, "tracecar_spans_exported_total", "") == 4
	})
	if got := r.spanIDs(); !slices.Equal(got, want) {
		t.Errorf("receiver has %v, want %v", got, want)
	}
}
