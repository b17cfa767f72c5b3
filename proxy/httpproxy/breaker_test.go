package httpproxy

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// breakerRig is a rig whose app answers with the status in *status and
// counts the requests that reach it.
func breakerRig(t *testing.T, status *atomic.Int64, hits *atomic.Int64) (*rig, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	r.handler.breaker = breaker.New(r.upstream.URL, breaker.Settings{
		ConsecutiveFailures: 3, FailureRatio: -1, OpenTimeout: 10 * time.Second,
		SuccessesToClose: 1, Clock: clock, Rand: func() float64 { return 0.5 },
	}, nil)
	return r, clock
}

func TestBreakerOpensOnAppFailuresAndFailsFastWithoutCallingIt(t *testing.T) {
	var status, hits atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	r, clock := breakerRig(t, &status, &hits)

	for i := range 3 {
		if got := r.get("/", nil).StatusCode; got != 503 {
			t.Fatalf("request %d: %d, want the app's 503", i, got)
		}
	}
	if hits.Load() != 3 || r.handler.breaker.State() != breaker.StateOpen {
		t.Fatalf("after 3 failures: %d app hits, state %v; want 3, open", hits.Load(), r.handler.breaker.State())
	}
	for range 5 {
		resp := r.get("/", map[string]string{"X-Correlation-ID": "ff-1"})
		p := readProblem(t, resp)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "10" || p.Upstream != r.upstream.URL ||
			p.CorrelationID != "ff-1" || p.Detail == "" {
			t.Fatalf("fail-fast: %d Retry-After %q problem %+v", resp.StatusCode, resp.Header.Get("Retry-After"), p)
		}
	}
	if hits.Load() != 3 {
		t.Errorf("the app received %d requests while the circuit was open, want still 3", hits.Load())
	}
	spans := r.waitSpans(8)
	last := spans[7]
	if v := attr(t, last, "error.type").AsString(); v != "circuit_open" {
		t.Errorf("error.type = %q", v)
	}
	if ev := last.Events(); len(ev) != 1 || ev[0].Name != "breaker.rejected" {
		t.Errorf("events = %v, want breaker.rejected", ev)
	}
	ev := spans[2].Events()
	if len(ev) != 1 || ev[0].Name != "breaker.transition" {
		t.Fatalf("the tripping request's events = %v, want breaker.transition", ev)
	}
	want := map[string]string{"breaker.from": "closed", "breaker.to": "open",
		"breaker.reason": "3 consecutive failures", "breaker.consecutive_failures": "3"}
	for _, kv := range ev[0].Attributes {
		if w, ok := want[string(kv.Key)]; ok {
			if kv.Value.String() != w {
				t.Errorf("%s = %q, want %q", kv.Key, kv.Value.String(), w)
			}
			delete(want, string(kv.Key))
		}
	}
	if len(want) > 0 {
		t.Errorf("transition event lacks %v", want)
	}

	// Recovery: after the open period one probe reaches the app; its
	// success closes the circuit.
	status.Store(http.StatusOK)
	clock.advance(10 * time.Second)
	if got := r.get("/", nil).StatusCode; got != 200 {
		t.Fatalf("probe: %d", got)
	}
	if hits.Load() != 4 || r.handler.breaker.State() != breaker.StateClosed {
		t.Errorf("after the probe: %d hits, state %v; want 4, closed", hits.Load(), r.handler.breaker.State())
	}
}

func TestBreakerIgnores429AndClientHangups(t *testing.T) {
	var status, hits atomic.Int64
	status.Store(http.StatusTooManyRequests)
	r, _ := breakerRig(t, &status, &hits)
	for range 6 {
		if got := r.get("/", nil).StatusCode; got != 429 {
			t.Fatalf("status %d", got)
		}
	}
	// Clients that give up while the app is slow say nothing about the app.
	block := make(chan struct{})
	defer close(block)
	slow := newRig(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	slow.handler.breaker = r.handler.breaker
	for range 6 {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.front.URL, nil)
		if resp, err := slow.front.Client().Do(req); err == nil {
			_ = resp.Body.Close()
			t.Fatal("the slow request completed")
		}
		cancel()
	}
	slow.waitSpans(6)
	if st := r.handler.breaker.State(); st != breaker.StateClosed {
		t.Errorf("state %v after 429s and hang-ups, want closed", st)
	}
}

func TestInboundRequestsAreRememberedForStitching(t *testing.T) {
	inside := make(chan stitch.Entry, 1)
	var reg *stitch.Registry
	r := newRig(t, http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		e, _ := reg.Lookup(req.Header.Get("X-Correlation-Id"))
		inside <- e
	}))
	reg = stitch.New(stitch.Settings{}, nil)
	r.handler.stitch = reg
	r.get("/", map[string]string{"X-Correlation-ID": "stitch-" + strconv.Itoa(7)})
	e := <-inside
	span := r.onlySpan()
	if e.SpanContext.SpanID() != span.SpanContext().SpanID() || e.CorrelationID != "stitch-7" {
		t.Errorf("in flight: registry has %+v, want the server span %s", e, span.SpanContext().SpanID())
	}
	if after, ok := reg.Lookup("stitch-7"); !ok || after.SpanContext.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("recently finished request not found: %+v %v", after, ok)
	}
	if _, ok := reg.Sole(); ok {
		t.Error("a finished request still counts as in flight")
	}
}
