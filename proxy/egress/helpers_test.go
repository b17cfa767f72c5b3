package egress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// fakeClock is a clock the test moves by hand (for the breakers).
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

// downstream is a real destination server that counts the requests that
// reach it.
type downstream struct {
	*httptest.Server
	hits atomic.Int64
}

func newDownstream(t *testing.T, h http.HandlerFunc) *downstream {
	t.Helper()
	d := &downstream{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(d.Close)
	return d
}

// hostPort is the downstream's "127.0.0.1:port", the key of its breaker.
func (d *downstream) hostPort() string { return d.Listener.Addr().String() }

// rig is a real egress proxy on loopback with an in-memory span recorder, a
// stitch registry, breakers on a fake clock and a captured log.
type rig struct {
	t      *testing.T
	proxy  *Proxy
	front  *httptest.Server
	client *http.Client
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reg    *prometheus.Registry
	stitch *stitch.Registry
	clock  *fakeClock
	logMu  sync.Mutex
	logBuf bytes.Buffer
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

// newRig starts an egress proxy; mutate adjusts the settings first. The
// breakers default to tripping after 3 consecutive failures with a 5s open
// period and no jitter.
func newRig(t *testing.T, mutate ...func(*Settings)) *rig {
	t.Helper()
	r := &rig{
		t: t, spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry(),
		clock: &fakeClock{now: time.Unix(1_700_000_000, 0)},
	}
	r.stitch = stitch.New(stitch.Settings{}, stitch.NewMetrics(r.reg))
	s := Settings{
		AccessLog: true,
		Breaker: breaker.Settings{
			ConsecutiveFailures: 3, FailureRatio: -1, OpenTimeout: 5 * time.Second,
			Clock: r.clock, Rand: func() float64 { return 0.5 },
		},
	}
	for _, m := range mutate {
		m(&s)
	}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	t.Cleanup(func() { _ = r.tp.Shutdown(t.Context()) })
	p, err := New(s, Deps{
		TracerProvider:  r.tp,
		Logger:          slog.New(proxy.NewLogHandler(slog.NewJSONHandler(r, nil))),
		Metrics:         NewMetrics(r.reg),
		Stitch:          r.stitch,
		BreakerObserver: breaker.NewMetrics(r.reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.proxy = p
	r.front = httptest.NewUnstartedServer(p)
	srv := NewServer(ServerSettings{}, p)
	r.front.Config.Protocols = srv.Protocols
	r.front.Start()
	t.Cleanup(func() { r.front.Close(); p.Close() })
	r.client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(r.proxyURL())}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

func (r *rig) proxyURL() *url.URL {
	u, err := url.Parse(r.front.URL)
	if err != nil {
		r.t.Fatal(err)
	}
	return u
}

// do sends a request through the proxy and reads the whole body.
func (r *rig) do(method, target string, hdr map[string]string) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), method, target, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("reading the body of %s %s: %v", method, target, err)
	}
	return resp, string(body)
}

func (r *rig) get(target string, hdr map[string]string) (*http.Response, string) {
	r.t.Helper()
	return r.do(http.MethodGet, target, hdr)
}

// waitSpans polls until n spans have ended and returns them.
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

func (r *rig) onlySpan() sdktrace.ReadOnlySpan {
	r.t.Helper()
	return r.waitSpans(1)[0]
}

// eventually polls cond until it holds, failing after 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
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

func hasAttr(span sdktrace.ReadOnlySpan, key string) bool {
	for _, kv := range span.Attributes() {
		if string(kv.Key) == key {
			return true
		}
	}
	return false
}

// problem decodes an RFC 9457 body, failing when it is not one.
func problem(t *testing.T, resp *http.Response, body string) proxy.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != proxy.ContentTypeProblem {
		t.Fatalf("Content-Type = %q, want %s; body %q", ct, proxy.ContentTypeProblem, body)
	}
	var p proxy.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d, response status %d", p.Status, resp.StatusCode)
	}
	return p
}

// rawConnect sends a CONNECT for target over a plain connection to the
// proxy and returns the response (the body read whole).
func (r *rig) rawConnect(target string) (*http.Response, string) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.front.Listener.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		r.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodConnect, "http://"+target, nil)
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// knownSpan is a span context standing for an inbound request's server span.
func knownSpan(t *testing.T, traceHex, spanHex string) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceHex)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanHex)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
