package httpproxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardProcessor ends spans without keeping them, so a long benchmark
// measures span creation, not a growing recorder.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }

// BenchmarkProxy measures one keep-alive GET of a 1 KiB body through the
// proxy on loopback, end to end (client, proxy and app share the process).
func BenchmarkProxy(b *testing.B) {
	body := make([]byte, 1024)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	defer app.Close()
	u, _ := url.Parse(app.URL)
	for _, mode := range []struct {
		name string
		tp   *sdktrace.TracerProvider
	}{
		{"tracing=off", nil},
		{"tracing=on", sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))},
	} {
		b.Run(mode.name, func(b *testing.B) {
			d := Deps{Logger: slog.New(slog.DiscardHandler)}
			if mode.tp != nil {
				d.TracerProvider = mode.tp
			}
			h, err := New(Settings{Upstream: u}, d)
			if err != nil {
				b.Fatal(err)
			}
			front := httptest.NewServer(h)
			defer front.Close()
			client := front.Client()
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/bench", nil)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkServeHTTP measures the proxy's own work per request, with an
// in-memory upstream transport so network time does not hide it.
func BenchmarkServeHTTP(b *testing.B) {
	u, _ := url.Parse("http://app.local")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
	h, err := New(Settings{Upstream: u}, Deps{TracerProvider: tp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h.rp.Transport = staticTransport{}
	req := httptest.NewRequest(http.MethodGet, "http://front.local/bench", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type staticTransport struct{}

func (staticTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
		Body: http.NoBody, ContentLength: 0, Request: r,
	}, nil
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// maxServeHTTPAllocs is the allocation budget of one proxied request through
// the inbound chain (span, correlation ID, propagation, ReverseProxy's
// request clone, headers), measured with an in-memory upstream. Raise it
// only with a reason; lower it when the chain gets leaner.
const maxServeHTTPAllocs = 37

// TestServeHTTPAllocations guards the inbound hot path's allocations, so a
// regression fails `make test` (timings never gate tests; allocations do).
func TestServeHTTPAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; run `make allocs`")
	}
	u, _ := url.Parse("http://app.local")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
	h, err := New(Settings{Upstream: u}, Deps{TracerProvider: tp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.rp.Transport = staticTransport{}
	req := httptest.NewRequest(http.MethodGet, "http://front.local/bench", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := &discardWriter{h: http.Header{}}
	got := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	t.Logf("%.0f allocations per request", got)
	if got > maxServeHTTPAllocs {
		t.Errorf("%.0f allocations per request through the inbound chain, budget %d", got, maxServeHTTPAllocs)
	}
}
