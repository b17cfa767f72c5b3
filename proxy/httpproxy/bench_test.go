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
