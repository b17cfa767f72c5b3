package egress

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracecar/tracecar/proxy/stitch"
)

// discardProcessor ends spans without keeping them, so a long benchmark
// measures span creation, not a growing recorder.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }

// BenchmarkProxiedGET measures one keep-alive GET of a 1 KiB body through
// the egress proxy on loopback, end to end (client, proxy and destination
// share the process), with the correlation ID stitched from the registry.
func BenchmarkProxiedGET(b *testing.B) {
	body := make([]byte, 1024)
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	defer dst.Close()
	for _, mode := range []struct {
		name string
		tp   *sdktrace.TracerProvider
	}{
		{"tracing=off", nil},
		{"tracing=on", sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))},
	} {
		b.Run(mode.name, func(b *testing.B) {
			reg := stitch.New(stitch.Settings{}, nil)
			d := Deps{Logger: slog.New(slog.DiscardHandler), Stitch: reg}
			if mode.tp != nil {
				d.TracerProvider = mode.tp
			}
			p, err := New(Settings{}, d)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			front := httptest.NewServer(p)
			defer front.Close()
			_, span := sdktrace.NewTracerProvider().Tracer("inbound").Start(context.Background(), "inbound")
			defer reg.Begin(stitch.Entry{SpanContext: span.SpanContext(), CorrelationID: "bench-1"})()
			req, _ := http.NewRequest(http.MethodGet, dst.URL+"/bench", nil)
			req.Header.Set("X-Correlation-ID", "bench-1")
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL(b, front.URL))}}
			defer client.CloseIdleConnections()
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
