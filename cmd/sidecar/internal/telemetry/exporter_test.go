package telemetry

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// everyKindOfSpan records spans exercising every field the encoder writes:
// two resources, scopes with and without version and attributes, every
// attribute type, events, links, remote and local parents, trace state,
// statuses, kinds and dropped counts.
func everyKindOfSpan(t testing.TB) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.43.0",
		attribute.String("service.name", "orders"), attribute.Int("replica", 3))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(rec),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{AttributeCountLimit: 40, EventCountLimit: 2, LinkCountLimit: 1,
			AttributeValueLengthLimit: -1, AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 1}))
	other := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.Empty()), sdktrace.WithSpanProcessor(rec))
	scoped := tp.Tracer("github.com/tracecar/tracecar/proxy/httpproxy", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithSchemaURL("https://opentelemetry.io/schemas/1.40.0"),
		trace.WithInstrumentationAttributes(attribute.String("scope.attr", "x")))
	plain := tp.Tracer("plain")

	ts, err := trace.ParseTraceState("vendor=abc,rojo=00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x00, 0xf0, 2},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	start := time.Unix(1_700_000_000, 123)
	ctx, server := scoped.Start(ctx, "GET /orders", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.Bool("a", true), attribute.Bool("b", false)}},
			trace.Link{SpanContext: remote}))
	server.SetAttributes(
		attribute.Bool("t", true), attribute.Bool("f", false), attribute.Int64("i", -42), attribute.Int("zero", 0),
		attribute.Float64("pi", 3.14159), attribute.Float64("fzero", 0), attribute.String("s", "héllo"), attribute.String("empty", ""),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, -2, 0}),
		attribute.Float64Slice("fs", []float64{0.5, 0}), attribute.StringSlice("ss", []string{"a", ""}),
		attribute.StringSlice("nothing", nil), attribute.ByteSlice("bytes", []byte{0, 1, 2}),
		attribute.Slice("mixed", attribute.StringValue("x"), attribute.IntValue(7), attribute.SliceValue(attribute.BoolValue(true))),
		attribute.Map("m", attribute.String("k", "v"), attribute.Map("inner", attribute.Int("n", 1))),
		attribute.KeyValue{Key: "novalue"},
	)
	server.AddEvent("message", trace.WithTimestamp(start.Add(time.Millisecond)),
		trace.WithAttributes(attribute.String("rpc.message.type", "SENT"), attribute.Int("rpc.message.id", 1)))
	server.AddEvent("second")
	server.AddEvent("dropped")
	_, client := plain.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient))
	client.SetStatus(codes.Error, "upstream timed out")
	client.End()
	_, internal := plain.Start(ctx, "")
	internal.SetStatus(codes.Ok, "")
	internal.End()
	for _, k := range []trace.SpanKind{trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKindInternal} {
		_, s := scoped.Start(ctx, k.String(), trace.WithSpanKind(k))
		s.End()
	}
	server.End(trace.WithTimestamp(start.Add(time.Second)))
	_, root := other.Tracer("").Start(context.Background(), "root", trace.WithNewRoot())
	root.End()
	return rec.Ended()
}

// otlpReceiver records the body of the last OTLP/HTTP export it got.
type otlpReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	last []byte
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.last = b
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(r.Close)
	return r
}

// export sends spans through exp and returns the request r received,
// decoded, its resources in a stable order (the OTLP exporter emits them in
// map order).
func (r *otlpReceiver) export(t *testing.T, exp sdktrace.SpanExporter, spans []sdktrace.ReadOnlySpan) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(r.last, &req); err != nil {
		t.Fatalf("decoding the export: %v", err)
	}
	slices.SortFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return cmp.Compare(len(a.GetResource().GetAttributes()), len(b.GetResource().GetAttributes()))
	})
	return &req
}

func stockExporter(t *testing.T, endpoint string) sdktrace.SpanExporter {
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

func ownExporter(t testing.TB, endpoint string) *exporter {
	exp, err := newOTLPExporter(context.Background(), otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// The exporter sends the same OTLP request as the OTel exporter, field for
// field, for every kind of span content, and again when it reuses its
// buffers for the next export.
func TestExporterMatchesOTLPExporter(t *testing.T) {
	spans := everyKindOfSpan(t)
	r := newOTLPReceiver(t)
	want := r.export(t, stockExporter(t, r.URL+"/v1/traces"), spans)
	if len(want.ResourceSpans) != 2 {
		t.Fatalf("the stock export has %d resources, want 2", len(want.ResourceSpans))
	}
	own := ownExporter(t, r.URL+"/v1/traces")
	for i := range 2 {
		if got := r.export(t, own, spans); !proto.Equal(got, want) {
			t.Fatalf("export %d differs:\n got %v\nwant %v", i, got, want)
		}
	}
	// A smaller batch after a larger one: nothing of the first is left.
	want = r.export(t, stockExporter(t, r.URL+"/v1/traces"), spans[:1])
	if got := r.export(t, own, spans[:1]); !proto.Equal(got, want) {
		t.Fatalf("export of one span differs:\n got %v\nwant %v", got, want)
	}
}

// After Shutdown nothing is sent and no error is made up.
func TestExporterAfterShutdown(t *testing.T) {
	var calls sync.WaitGroup
	r := newOTLPReceiver(t)
	exp := ownExporter(t, r.URL+"/v1/traces")
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls.Wait()
	if err := exp.ExportSpans(context.Background(), everyKindOfSpan(t)); err != nil {
		t.Fatalf("export after shutdown: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil {
		t.Fatal("an export reached the collector after shutdown")
	}
}

// BenchmarkExport compares the OTel exporter's conversion with tracecar's
// encoding for a batch of server spans like the proxy's (13 attributes).
func BenchmarkExport(b *testing.B) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("github.com/tracecar/tracecar/proxy/httpproxy")
	for range 512 {
		_, s := tr.Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindServer))
		s.SetAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.path", "/1k"),
			attribute.String("url.scheme", "http"), attribute.String("network.protocol.version", "1.1"),
			attribute.String("tracecar.correlation_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
			attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 15006),
			attribute.String("client.address", "127.0.0.1"), attribute.String("network.peer.address", "127.0.0.1"),
			attribute.Int("network.peer.port", 40000), attribute.String("user_agent.original", "Go-http-client/1.1"),
			attribute.Int("http.response.status_code", 200), attribute.Int("http.response.body.size", 1024))
		s.End()
	}
	spans := rec.Ended()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	b.Run("otlptracehttp", func(b *testing.B) {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = exp.Shutdown(context.Background()) }()
		b.ReportAllocs()
		for b.Loop() {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	})
	b.Run("tracecar", func(b *testing.B) {
		exp := ownExporter(b, srv.URL+"/v1/traces")
		b.ReportAllocs()
		for b.Loop() {
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	})
}
