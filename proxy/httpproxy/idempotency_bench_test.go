package httpproxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// bodyTransport answers every request with a fixed 201 and body, in memory.
type bodyTransport struct{ body []byte }

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusCreated, ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Location": {"/charges/ch_1"}},
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)), Request: r,
	}, nil
}

// BenchmarkIdempotency measures the middleware's own work per protected
// request (in-memory app, memory store, tracing on): "replay" is the fast
// path of a retry answered from the record; "execute" claims a new key,
// forwards, tees the response and records it.
func BenchmarkIdempotency(b *testing.B) {
	u, _ := url.Parse("http://app.local")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
	h, err := New(Settings{Upstream: u, Idempotency: &IdempotencySettings{}},
		Deps{TracerProvider: tp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	h.idem.rp.Transport = bodyTransport{body: []byte(`{"id":"ch_1","amount":100,"currency":"eur","status":"succeeded"}`)}
	payload := []byte(`{"amount":100,"currency":"eur","source":"tok_visa"}`)
	request := func(key string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "http://front.local/charges", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk_test_123")
		req.Header.Set(headerIdempotencyKey, key)
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		return req
	}
	w := &discardWriter{h: http.Header{}}

	b.Run("replay", func(b *testing.B) {
		h.ServeHTTP(w, request("bench-replay"))
		req := request("bench-replay")
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			req.Body = io.NopCloser(bytes.NewReader(payload))
			h.ServeHTTP(w, req)
		}
		if w.h.Get(headerReplayed) != "true" {
			b.Fatal("not a replay")
		}
	})
	b.Run("execute", func(b *testing.B) {
		req := request("")
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			clear(w.h)
			req.Header[headerIdempotencyKey] = []string{"bench-exec-" + strconv.Itoa(i)}
			req.Body = io.NopCloser(bytes.NewReader(payload))
			h.ServeHTTP(w, req)
		}
		if w.h.Get(headerReplayed) != "" || w.h.Get("Location") == "" {
			b.Fatalf("not an execution: %v", w.h)
		}
	})
}

// Allocation budgets of the Idempotency-Key fast paths, measured with an
// in-memory app and the memory store (tracing on). Raise them only with a
// reason; lower them when the paths get leaner.
const (
	// maxReplayAllocs: a retry answered from its record (parse the key,
	// hash the scope, read the record, fingerprint the body, write the
	// stored response).
	maxReplayAllocs = 44
	// maxNoKeyExtraAllocs: what the middleware adds to a request on an
	// optional route that carries no key (it passes straight through).
	maxNoKeyExtraAllocs = 0
)

// TestIdempotencyAllocations guards the dedupe fast paths, so a regression
// fails `make test`.
func TestIdempotencyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; run `make allocs`")
	}
	u, _ := url.Parse("http://app.local")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardProcessor{}))
	newHandler := func(idem *IdempotencySettings) *Handler {
		h, err := New(Settings{Upstream: u, Idempotency: idem},
			Deps{TracerProvider: tp, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		tr := bodyTransport{body: []byte(`{"id":"ch_1"}`)}
		h.rp.Transport = tr
		if h.idem != nil {
			h.idem.rp.Transport = tr
		}
		return h
	}
	payload := []byte(`{"amount":100}`)
	request := func(key string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "http://front.local/charges", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set(headerIdempotencyKey, key)
		}
		return req
	}
	w := &discardWriter{h: http.Header{}}
	measure := func(h *Handler, key string) float64 {
		req := request(key)
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			req.Body = io.NopCloser(bytes.NewReader(payload))
			h.ServeHTTP(w, req)
		})
	}

	with := newHandler(&IdempotencySettings{})
	with.ServeHTTP(w, request("alloc-replay"))
	replay := measure(with, "alloc-replay")
	if w.h.Get(headerReplayed) != "true" {
		t.Fatal("the measured requests were not replays")
	}
	plain, noKey := measure(newHandler(nil), ""), measure(with, "")
	t.Logf("replay %.0f allocations; no key %.0f (without the middleware %.0f)", replay, noKey, plain)
	if replay > maxReplayAllocs {
		t.Errorf("replay: %.0f allocations, budget %d", replay, maxReplayAllocs)
	}
	if noKey-plain > maxNoKeyExtraAllocs {
		t.Errorf("no key: the middleware adds %.0f allocations, budget %d", noKey-plain, maxNoKeyExtraAllocs)
	}
}
