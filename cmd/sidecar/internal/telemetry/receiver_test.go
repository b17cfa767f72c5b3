package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receivedSpan is one span as an OTLP receiver decoded it.
type receivedSpan struct {
	Name     string
	TraceID  trace.TraceID
	SpanID   trace.SpanID
	ParentID trace.SpanID
	Resource map[string]string // string resource attributes
}

// receiver records what an OTLP endpoint receives. When gated, every export
// request waits until release is called, which holds the exporting goroutine.
type receiver struct {
	mu       sync.Mutex
	spans    []receivedSpan
	requests int
	errs     []string

	arrived chan struct{} // one token per request, dropped when full
	gate    chan struct{} // nil: no gate
	release func()
}

func newReceiver(gated bool) *receiver {
	r := &receiver{arrived: make(chan struct{}, 1024), release: func() {}}
	if gated {
		r.gate = make(chan struct{})
		r.release = sync.OnceFunc(func() { close(r.gate) })
	}
	return r
}

func (r *receiver) record(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	r.requests++
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got := receivedSpan{Name: s.GetName(), Resource: res}
				copy(got.TraceID[:], s.GetTraceId())
				copy(got.SpanID[:], s.GetSpanId())
				copy(got.ParentID[:], s.GetParentSpanId())
				r.spans = append(r.spans, got)
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

func (r *receiver) wait(ctx context.Context) {
	if r.gate == nil {
		return
	}
	select {
	case <-r.gate:
	case <-ctx.Done():
	}
}

func (r *receiver) reject(reason string) {
	r.mu.Lock()
	r.errs = append(r.errs, reason)
	r.mu.Unlock()
}

func (r *receiver) received() ([]receivedSpan, int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.spans...), r.requests, append([]string(nil), r.errs...)
}

func (r *receiver) spanIDs() []trace.SpanID {
	spans, _, _ := r.received()
	ids := make([]trace.SpanID, len(spans))
	for i, s := range spans {
		ids[i] = s.SpanID
	}
	return ids
}

// ServeHTTP is an OTLP/HTTP traces endpoint (binary protobuf encoding).
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" ||
		req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.reject(req.Method + " " + req.URL.Path + " " + req.Header.Get("Content-Type"))
		http.Error(w, "not an OTLP/HTTP protobuf traces request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.reject(err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		r.reject(err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.record(&msg)
	r.wait(req.Context())
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		r.reject(err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out) // the exporter reports a failed read on its side
}

// grpcTraceService is the OTLP/gRPC TraceService backed by a receiver.
type grpcTraceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

// Export implements coltracepb.TraceServiceServer.
func (s grpcTraceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.r.record(req)
	s.r.wait(ctx)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// startReceiver serves r over protocol on loopback and returns the endpoint
// URL to put in OTEL_EXPORTER_OTLP_ENDPOINT.
func startReceiver(t testing.TB, protocol string, r *receiver) string {
	t.Helper()
	switch protocol {
	case ProtocolHTTPProtobuf:
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		t.Cleanup(r.release) // runs first: Close waits for held handlers
		return srv.URL
	case ProtocolGRPC:
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, grpcTraceService{r: r})
		served := make(chan error, 1)
		go func() { served <- srv.Serve(lis) }()
		t.Cleanup(func() {
			r.release()
			srv.Stop()
			if err := <-served; err != nil {
				t.Errorf("grpc receiver: %v", err)
			}
		})
		return "http://" + lis.Addr().String()
	}
	t.Fatalf("unknown protocol %q", protocol)
	return ""
}

// closedEndpoint returns a loopback URL where nothing listens.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// isolateEnv unsets every OTEL_* variable for the test, so the machine's
// environment cannot change what Setup does; t.Setenv restores them.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// logBuffer collects JSON log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the decoded log records whose msg is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(text) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// fakeClock is the clock of the log rate limits in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitFor waits for a token on ch, failing the test after a deadline.
func waitFor(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// metricValue reads a counter or gauge from reg; reason selects a child of
// tracecar_spans_dropped_total. It returns -1 when the series is missing.
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if reason != "" && !hasLabel(m.GetLabel(), "reason", reason) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func hasLabel(labels []*dto.LabelPair, name, value string) bool {
	for _, l := range labels {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
