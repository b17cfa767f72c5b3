package httpproxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tracecar/tracecar/proxy"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// rig is a real upstream behind a real proxy, both on loopback, with an
// in-memory span recorder and a captured log.
type rig struct {
	t        *testing.T
	upstream *httptest.Server
	front    *httptest.Server
	handler  *Handler
	spans    *tracetest.SpanRecorder
	reg      *prometheus.Registry
	logMu    sync.Mutex
	logBuf   bytes.Buffer
}

func (r *rig) Write(p []byte) (int, error) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.Write(p)
}

func (r *rig) log() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.logBuf.String()
}

// newRig starts app as the upstream and a proxy in front of it; mutate
// adjusts the settings before the proxy is built.
func newRig(t *testing.T, app http.Handler, mutate ...func(*Settings)) *rig {
	t.Helper()
	return newRigWith(t, app, nil, mutate...)
}

// newRigWith is newRig with deps, when not nil, adjusting the proxy's Deps
// after the rig has set its tracer, logger and metrics.
func newRigWith(t *testing.T, app http.Handler, deps func(*rig, *Deps), mutate ...func(*Settings)) *rig {
	t.Helper()
	r := &rig{t: t, spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry()}
	r.upstream = httptest.NewServer(app)
	t.Cleanup(r.upstream.Close)
	u, _ := url.Parse(r.upstream.URL)
	s := Settings{Upstream: u, AccessLog: true}
	for _, m := range mutate {
		m(&s)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	d := Deps{
		TracerProvider: tp,
		Logger:         slog.New(proxy.NewLogHandler(slog.NewJSONHandler(r, nil))),
		Metrics:        NewMetrics(r.reg),
	}
	if deps != nil {
		deps(r, &d)
	}
	h, err := New(s, d)
	if err != nil {
		t.Fatal(err)
	}
	r.handler = h
	srv := NewServer(ServerSettings{}, h)
	r.front = httptest.NewUnstartedServer(h)
	r.front.Config.Protocols = srv.Protocols
	r.front.Config.MaxHeaderBytes = srv.MaxHeaderBytes
	r.front.Start()
	t.Cleanup(func() { r.front.Close(); h.Close() })
	return r
}

// waitSpans polls until n spans have ended (the span ends just after the
// response is written, so the client can be a moment ahead) and returns them.
func (r *rig) waitSpans(n int) []sdktrace.ReadOnlySpan {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.spans.Ended()
		if len(s) >= n {
			if len(s) > n {
				r.t.Fatalf("want %d ended spans, got %d", n, len(s))
			}
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("want %d ended spans, got %d after 5s", n, len(s))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// onlySpan waits for and returns the single span of a one-request test.
func (r *rig) onlySpan() sdktrace.ReadOnlySpan {
	r.t.Helper()
	return r.waitSpans(1)[0]
}

// attr returns the value of key on span, failing when absent.
func attr(t *testing.T, span sdktrace.ReadOnlySpan, key string) attribute.Value {
	t.Helper()
	for _, kv := range span.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	t.Fatalf("span %q has no attribute %s; has %v", span.Name(), key, span.Attributes())
	return attribute.Value{}
}

// get sends a GET with the given headers through the proxy.
func (r *rig) get(path string, hdr map[string]string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), http.MethodGet, r.front.URL+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.front.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}
