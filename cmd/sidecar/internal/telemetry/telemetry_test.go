package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

var protocols = []string{ProtocolHTTPProtobuf, ProtocolGRPC}

// setup is Setup that fails the test on error and shuts down at cleanup.
func setup(t *testing.T, s Settings) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), s)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx) // tests that care call Shutdown themselves first
	})
	return tel
}

// endSpans starts and ends n root spans and returns their span IDs in order.
func endSpans(tp trace.TracerProvider, name string, n int) []trace.SpanID {
	tracer := tp.Tracer("telemetry_test")
	ids := make([]trace.SpanID, n)
	for i := range ids {
		_, span := tracer.Start(context.Background(), name)
		ids[i] = span.SpanContext().SpanID()
		span.End()
	}
	return ids
}

func TestExportReachesReceiver(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			isolateEnv(t)
			r := newReceiver(false)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, protocol, r))
			t.Setenv("OTEL_SERVICE_NAME", "orders-sidecar")
			// OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,deployment.environment.name=test")
			reg := prometheus.NewRegistry()
			tel := setup(t, Settings{
				ServiceVersion: "1.2.3",
				Protocol:       protocol,
				ExportInterval: 20 * time.Millisecond, // a partial batch goes out on the tick
				Registerer:     reg,
			})

			tracer := tel.TracerProvider.Tracer("telemetry_test")
			ctx, parent := tracer.Start(context.Background(), "parent")
			_, child := tracer.Start(ctx, "child")
			child.End()
			parent.End()

			eventually(t, "two spans at the receiver", func() bool {
				spans, _, _ := r.received()
				return len(spans) >= 2
			})
			spans, _, rejected := r.received()
			if len(rejected) > 0 {
				t.Fatalf("receiver rejected requests: %v", rejected)
			}
			if len(spans) != 2 {
				t.Fatalf("received %d spans, want 2: %+v", len(spans), spans)
			}
			gotChild, gotParent := spans[0], spans[1] // ended in this order
			if gotChild.Name != "child" || gotParent.Name != "parent" {
				t.Fatalf("span names = %q, %q; want child, parent", gotChild.Name, gotParent.Name)
			}
			if gotParent.SpanID != parent.SpanContext().SpanID() || gotChild.SpanID != child.SpanContext().SpanID() {
				t.Errorf("span IDs = %s, %s; want %s, %s", gotParent.SpanID, gotChild.SpanID,
					parent.SpanContext().SpanID(), child.SpanContext().SpanID())
			}
			if gotChild.TraceID != parent.SpanContext().TraceID() || gotParent.TraceID != parent.SpanContext().TraceID() {
				t.Errorf("trace IDs = %s, %s; want %s", gotParent.TraceID, gotChild.TraceID, parent.SpanContext().TraceID())
			}
			if gotChild.ParentID != gotParent.SpanID {
				t.Errorf("child's parent = %s, want %s", gotChild.ParentID, gotParent.SpanID)
			}
			if gotParent.ParentID.IsValid() {
				t.Errorf("root span has parent %s", gotParent.ParentID)
			}
			for key, want := range map[string]string{
				"service.name":                "orders-sidecar",
				"service.version":             "1.2.3",
				"deployment.environment.name": "test",
				"telemetry.sdk.language":      "go",
				"process.runtime.name":        "go",
			} {
				if got := gotParent.Resource[key]; got != want {
					t.Errorf("resource %s = %q, want %q", key, got, want)
				}
			}
			if gotParent.Resource["service.instance.id"] == "" || gotParent.Resource["host.name"] == "" {
				t.Errorf("resource lacks service.instance.id or host.name: %v", gotParent.Resource)
			}
			eventually(t, "exported_total = 2", func() bool {
				return metricValue(t, reg, "tracecar_spans_exported_total", "") == 2
			})
			for _, reason := range []string{reasonQueueFull, reasonExportFailed} {
				if got := metricValue(t, reg, "tracecar_spans_dropped_total", reason); got != 0 {
					t.Errorf("dropped_total{reason=%q} = %v, want 0", reason, got)
				}
			}
		})
	}
}

func TestShutdownFlushesQueuedSpans(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			isolateEnv(t)
			r := newReceiver(false)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, protocol, r))
			tel := setup(t, Settings{Protocol: protocol, ExportInterval: time.Hour})

			want := endSpans(tel.TracerProvider, "last words", 3)
			if _, requests, _ := r.received(); requests != 0 {
				t.Fatalf("exported %d requests before Shutdown; the test needs the spans still queued", requests)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if got := r.spanIDs(); !slices.Equal(got, want) {
				t.Errorf("after Shutdown the receiver has %v, want %v", got, want)
			}
			// Spans ended after Shutdown go nowhere.
			endSpans(tel.TracerProvider, "too late", 1)
			if got := r.spanIDs(); len(got) != len(want) {
				t.Errorf("a span ended after Shutdown was exported: %v", got)
			}
		})
	}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	isolateEnv(t)
	r := newReceiver(true) // holds every export until released
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, ProtocolHTTPProtobuf, r))
	reg := prometheus.NewRegistry()
	logs := &logBuffer{}
	tel := setup(t, Settings{
		QueueSize:      4,
		BatchSize:      1,
		ExportInterval: time.Hour,
		Registerer:     reg,
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
	})

	// The first span is taken by the exporter, which the receiver holds.
	first := endSpans(tel.TracerProvider, "held", 1)
	waitFor(t, "the first export to reach the receiver", r.arrived)

	// With the exporter held, the queue takes exactly 4 of the next 10 spans.
	const n = 10
	ended := make(chan []trace.SpanID, 1)
	go func() { ended <- endSpans(tel.TracerProvider, "burst", n) }()
	var burst []trace.SpanID
	select {
	case burst = <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("span.End blocked while the exporter was held")
	}
	if got := metricValue(t, reg, "tracecar_spans_dropped_total", reasonQueueFull); got != n-4 {
		t.Errorf("dropped_total{reason=queue_full} = %v, want %d", got, n-4)
	}
	if got := metricValue(t, reg, "tracecar_span_queue_length", ""); got != 4 {
		t.Errorf("queue_length = %v, want 4", got)
	}
	if got := metricValue(t, reg, "tracecar_span_queue_capacity", ""); got != 4 {
		t.Errorf("queue_capacity = %v, want 4", got)
	}

	r.release()
	want := append(first, burst[:4]...)
	eventually(t, "the held span and the 4 queued spans at the receiver", func() bool {
		return metricValue(t, reg, "tracecar_spans_exported_total", "") == 5
	})
	if got := r.spanIDs(); !slices.Equal(got, want) {
		t.Errorf("receiver has %v, want %v (the held span, then the queue in order)", got, want)
	}
	if got := metricValue(t, reg, "tracecar_spans_dropped_total", reasonExportFailed); got != 0 {
		t.Errorf("dropped_total{reason=export_failed} = %v, want 0", got)
	}
	lines := logs.lines(t, "spans dropped since the last warning")
	if len(lines) != 1 {
		t.Fatalf("got %d drop warnings, want 1: %v", len(lines), lines)
	}
	if got := lines[0]["dropped_queue_full"]; got != float64(n-4) {
		t.Errorf("warning dropped_queue_full = %v, want %d", got, n-4)
	}
	if got := lines[0]["level"]; got != "WARN" {
		t.Errorf("warning level = %v", got)
	}
}

func TestCollectorDown(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			isolateEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", closedEndpoint(t))
			reg := prometheus.NewRegistry()
			logs := &logBuffer{}
			clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			start := time.Now()
			tel := setup(t, Settings{
				Protocol:       protocol,
				BatchSize:      1, // one export, and one failure, per span
				ExportInterval: time.Hour,
				ExportTimeout:  200 * time.Millisecond, // the gRPC exporter retries until then
				Registerer:     reg,
				Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
				Now:            clock.Now,
			})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Setup took %v with the collector down; it must not wait for it", d)
			}
			failed := func(n float64) func() bool {
				return func() bool {
					return metricValue(t, reg, "tracecar_spans_dropped_total", reasonExportFailed) == n
				}
			}
			const msg = "spans dropped since the last warning"

			endSpans(tel.TracerProvider, "lost", 5)
			eventually(t, "5 spans counted export_failed", failed(5))
			lines := logs.lines(t, msg)
			if len(lines) != 1 {
				t.Fatalf("got %d drop warnings within one rate-limit window, want 1: %v", len(lines), lines)
			}
			if got := lines[0]["dropped_export_failed"]; got != float64(1) {
				t.Errorf("first warning dropped_export_failed = %v, want 1", got)
			}
			if e, _ := lines[0]["error"].(string); e == "" {
				t.Errorf("first warning carries no error: %v", lines[0])
			}

			// A new window: the next failure is logged with the 4 spans the
			// first window kept quiet about.
			clock.Advance(warnInterval)
			endSpans(tel.TracerProvider, "lost", 1)
			eventually(t, "6 spans counted export_failed", failed(6))
			lines = logs.lines(t, msg)
			if len(lines) != 2 {
				t.Fatalf("got %d drop warnings after the window, want 2: %v", len(lines), lines)
			}
			if got := lines[1]["dropped_export_failed"]; got != float64(5) {
				t.Errorf("second warning dropped_export_failed = %v, want 5", got)
			}
			if got := metricValue(t, reg, "tracecar_spans_exported_total", ""); got != 0 {
				t.Errorf("exported_total = %v, want 0", got)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start = time.Now()
			_ = tel.Shutdown(ctx) // nothing is queued; the exporter shuts down
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Shutdown took %v, beyond its 5s context", d)
			}
		})
	}
}

func TestShutdownBoundedByContext(t *testing.T) {
	isolateEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", closedEndpoint(t))
	reg := prometheus.NewRegistry()
	tel := setup(t, Settings{
		Protocol:       ProtocolGRPC, // retries Unavailable with a 5s backoff
		ExportInterval: time.Hour,
		ExportTimeout:  time.Hour,
		Registerer:     reg,
		Logger:         slog.New(slog.DiscardHandler),
	})
	endSpans(tel.TracerProvider, "stuck", 3)

	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err := tel.Shutdown(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown error = %v, want context.DeadlineExceeded", err)
	}
	// The export alone would wait at least 5s before its first retry.
	if elapsed > budget+2*time.Second {
		t.Errorf("Shutdown took %v with a %v context", elapsed, budget)
	}
	eventually(t, "the 3 queued spans counted export_failed", func() bool {
		return metricValue(t, reg, "tracecar_spans_dropped_total", reasonExportFailed) == 3
	})
}

func TestSamplerFromEnvironment(t *testing.T) {
	remoteUnsampled := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
		}))
	tests := []struct {
		name    string
		sampler string // OTEL_TRACES_SAMPLER; "" leaves it unset
		parent  context.Context
		sampled bool
	}{
		{"always_off", "always_off", context.Background(), false},
		// Unset: the SDK default parentbased_always_on samples a root span
		// and follows an unsampled remote parent.
		{"unset/root", "", context.Background(), true},
		{"unset/unsampled_parent", "", remoteUnsampled, false},
		{"always_on/unsampled_parent", "always_on", remoteUnsampled, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			r := newReceiver(false)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, ProtocolHTTPProtobuf, r))
			if tc.sampler != "" {
				t.Setenv("OTEL_TRACES_SAMPLER", tc.sampler)
			}
			tel := setup(t, Settings{})
			_, span := tel.TracerProvider.Tracer("telemetry_test").Start(tc.parent, "op")
			sc, recording := span.SpanContext(), span.IsRecording()
			span.End()
			if sc.IsSampled() != tc.sampled {
				t.Errorf("sampled = %v, want %v", sc.IsSampled(), tc.sampled)
			}
			if recording != tc.sampled {
				t.Errorf("recording = %v, want %v", recording, tc.sampled)
			}
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			var want []trace.SpanID
			if tc.sampled {
				want = []trace.SpanID{sc.SpanID()}
			}
			if got := r.spanIDs(); !slices.Equal(got, want) {
				t.Errorf("exported %v, want %v", got, want)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	isolateEnv(t)
	r := newReceiver(false)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startReceiver(t, ProtocolHTTPProtobuf, r))
	reg := prometheus.NewRegistry()
	tel := setup(t, Settings{Disabled: true, Registerer: reg, ExportInterval: time.Millisecond})

	_, span := tel.TracerProvider.Tracer("telemetry_test").Start(context.Background(), "op")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("disabled: span recording=%v valid=%v, want a non-recording, invalid span",
			span.IsRecording(), span.SpanContext().IsValid())
	}
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, requests, _ := r.received(); requests != 0 {
		t.Errorf("disabled: receiver got %d export requests", requests)
	}
	if families, err := reg.Gather(); err != nil || len(families) != 0 {
		t.Errorf("disabled: registered metrics %v (err %v), want none", families, err)
	}
}

func TestSetupErrors(t *testing.T) {
	isolateEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", closedEndpoint(t))

	if _, err := Setup(context.Background(), Settings{Protocol: "http/json"}); !errors.Is(err, ErrProtocol) {
		t.Errorf("protocol http/json: err = %v, want ErrProtocol", err)
	}

	reg := prometheus.NewRegistry()
	setup(t, Settings{Registerer: reg})
	if _, err := Setup(context.Background(), Settings{Registerer: reg}); err == nil ||
		!strings.Contains(err.Error(), "registering span metrics") {
		t.Errorf("second Setup on one registry: err = %v, want a registration error", err)
	}

	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "novalue")
	_, err := Setup(context.Background(), Settings{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Errorf("bad OTEL_RESOURCE_ATTRIBUTES: err = %v, want one naming the variable", err)
	}
}

func TestDefaultServiceName(t *testing.T) {
	isolateEnv(t)
	res, err := newResource(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, kv := range res.Attributes() {
		attrs[string(kv.Key)] = kv.Value.AsString()
	}
	if want := "unknown_service:" + filepath.Base(exe); attrs["service.name"] != want {
		t.Errorf("service.name = %q, want %q", attrs["service.name"], want)
	}
	if _, ok := attrs["service.version"]; ok {
		t.Errorf("service.version set without a version: %v", attrs)
	}
	if _, ok := attrs["process.command_args"]; ok {
		t.Errorf("the resource carries the command line, which may hold secrets")
	}
}

func TestInsecureByDefault(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{env: nil, want: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318"}, want: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, want: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "false"}, want: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem"}, want: false},
		{env: map[string]string{"OTEL_SERVICE_NAME": "orders"}, want: true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(slices.Sorted(maps.Keys(tc.env)), ","), func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if got := insecureByDefault(); got != tc.want {
				t.Errorf("insecureByDefault() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSDKErrorsLoggedRateLimited(t *testing.T) {
	isolateEnv(t)
	logs := &logBuffer{}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	setup(t, Settings{Disabled: true, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: clock.Now})
	const msg = "OpenTelemetry SDK error"

	for i := range 3 {
		otel.Handle(fmt.Errorf("sdk error %d", i))
	}
	lines := logs.lines(t, msg)
	if len(lines) != 1 || lines[0]["error"] != "sdk error 0" {
		t.Fatalf("within one window: %v, want one line for sdk error 0", lines)
	}
	clock.Advance(warnInterval)
	otel.Handle(errors.New("sdk error 3"))
	lines = logs.lines(t, msg)
	if len(lines) != 2 || lines[1]["error"] != "sdk error 3" || lines[1]["suppressed_since_last_warning"] != float64(2) {
		t.Fatalf("next window: %v, want a line for sdk error 3 with 2 suppressed", lines)
	}
}
