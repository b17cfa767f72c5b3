package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tracecar/tracecar/proxy/breaker"
)

func TestAllowList(t *testing.T) {
	allowed := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	denied := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "leak") })
	r := newRig(t, func(s *Settings) { s.Allow = []string{allowed.hostPort(), "*.example.com"} })

	if resp, body := r.get(allowed.URL+"/a", nil); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("allowed destination: %d %q", resp.StatusCode, body)
	}
	resp, body := r.get(denied.URL+"/b", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied destination got %d, want 403", resp.StatusCode)
	}
	if p := problem(t, resp, body); p.Upstream != denied.hostPort() || !strings.Contains(p.Detail, "not on the egress allow-list") {
		t.Errorf("problem %+v", p)
	}
	cresp, cbody := r.rawConnect(denied.hostPort())
	if cresp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied CONNECT got %d, want 403", cresp.StatusCode)
	}
	problem(t, cresp, cbody)
	if n := denied.hits.Load(); n != 0 {
		t.Errorf("denied destination received %d requests", n)
	}
	if n := allowed.hits.Load(); n != 1 {
		t.Errorf("allowed destination received %d requests, want 1", n)
	}
	if got := testutil.ToFloat64(r.proxy.metrics.rejected[rejectDenied]); got != 2 {
		t.Errorf("rejected{denied} = %v, want 2", got)
	}
}

func TestConcurrencyBound(t *testing.T) {
	release := make(chan struct{})
	var held sync.WaitGroup
	d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = io.WriteString(w, "done")
	})
	r := newRig(t, func(s *Settings) { s.MaxConcurrent = 2 })
	statuses := make(chan int, 2)
	for range 2 {
		held.Go(func() {
			resp, err := r.client.Get(d.URL + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	eventually(t, "two requests held at the destination", func() bool { return d.hits.Load() == 2 })

	resp, body := r.get(d.URL+"/third", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third request got %d, want 503", resp.StatusCode)
	}
	if p := problem(t, resp, body); !strings.Contains(p.Detail, "egress concurrency limit (2) reached") {
		t.Errorf("detail %q", p.Detail)
	}
	if n := d.hits.Load(); n != 2 {
		t.Errorf("destination received %d requests, want 2", n)
	}
	if got := testutil.ToFloat64(r.proxy.metrics.rejected[rejectConcurrency]); got != 1 {
		t.Errorf("rejected{concurrency} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.proxy.metrics.inflight); got != 2 {
		t.Errorf("in_flight = %v, want 2", got)
	}
	close(release)
	held.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("held request got %d, want 200", s)
		}
	}
	eventually(t, "slots freed", func() bool { return r.proxy.inflight.Load() == 0 })
}

// breakerOf is the breaker the proxy keeps for a destination.
func (r *rig) breakerOf(hostPort string) *breaker.Breaker { return r.proxy.breakers.Get(hostPort) }

func TestBreakerOpensAfterFailuresAndStopsDialing(t *testing.T) {
	var failing sync.Mutex // held: the destination answers 503
	failing.Lock()
	d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) {
		if !failing.TryLock() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		failing.Unlock()
		_, _ = io.WriteString(w, "recovered")
	})
	r := newRig(t)
	for i := range 3 {
		if resp, _ := r.get(d.URL+"/x", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("request %d got %d, want the destination's 503", i, resp.StatusCode)
		}
	}
	eventually(t, "the breaker to open", func() bool { return r.breakerOf(d.hostPort()).State() == breaker.StateOpen })

	for range 5 {
		resp, body := r.get(d.URL+"/x", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
			t.Fatalf("open breaker: %d Retry-After %q, want 503 and 5", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		p := problem(t, resp, body)
		if p.Upstream != d.hostPort() || !strings.Contains(p.Detail, "is open") || !strings.Contains(p.Detail, "3 consecutive failures") {
			t.Errorf("problem %+v, want the upstream, the state and the reason", p)
		}
	}
	if n := d.hits.Load(); n != 3 {
		t.Errorf("destination received %d requests, want 3 (none while open)", n)
	}
	if got := testutil.ToFloat64(r.proxy.metrics.rejected[rejectBreaker]); got != 5 {
		t.Errorf("rejected{breaker} = %v, want 5", got)
	}
	spans := r.waitSpans(8)
	last := spans[len(spans)-1]
	var ev bool
	for _, e := range last.Events() {
		if e.Name == "breaker.rejected" {
			ev = true
			for _, kv := range e.Attributes {
				if kv.Key == "tracecar.breaker.state" && kv.Value.AsString() != "open" {
					t.Errorf("event state %q", kv.Value.AsString())
				}
			}
		}
	}
	if !ev || attr(t, last, "error.type").AsString() != "circuit_open" {
		t.Errorf("rejected span: events %v error.type %v", last.Events(), attr(t, last, "error.type").String())
	}

	// After the open period, probes reach the recovered destination and
	// close the breaker.
	failing.Unlock()
	r.clock.Advance(5 * time.Second)
	for range 2 {
		if resp, body := r.get(d.URL+"/x", nil); resp.StatusCode != http.StatusOK || body != "recovered" {
			t.Fatalf("probe got %d %q", resp.StatusCode, body)
		}
	}
	eventually(t, "the breaker to close", func() bool { return r.breakerOf(d.hostPort()).State() == breaker.StateClosed })
}

func TestBreakerOpensOnDialFailures(t *testing.T) {
	r := newRig(t)
	target := closedPort(t)
	for i := range 3 {
		resp, body := r.get("http://"+target+"/x", nil)
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("dial %d got %d, want 502", i, resp.StatusCode)
		}
		if p := problem(t, resp, body); !strings.Contains(p.Detail, "upstream unreachable") {
			t.Errorf("detail %q", p.Detail)
		}
	}
	resp, body := r.get("http://"+target+"/x", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 refused dials: %d Retry-After %q, want 503 from the breaker", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	problem(t, resp, body)
	// CONNECT to the same destination is refused by the same breaker.
	if cresp, _ := r.rawConnect(target); cresp.StatusCode != http.StatusServiceUnavailable || cresp.Header.Get("Retry-After") == "" {
		t.Errorf("CONNECT while open: %d, want 503 with Retry-After", cresp.StatusCode)
	}
}

func TestRateLimitAndClientCancelDoNotTrip(t *testing.T) {
	const n = 3 + 5
	t.Run("429", func(t *testing.T) {
		d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTooManyRequests) })
		r := newRig(t)
		for range n {
			if resp, _ := r.get(d.URL+"/x", nil); resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("got %d, want the destination's 429", resp.StatusCode)
			}
		}
		r.get(d.URL+"/x", nil)
		if st := r.breakerOf(d.hostPort()).State(); st != breaker.StateClosed || d.hits.Load() != n+1 {
			t.Errorf("after %d 429s: breaker %v, destination hits %d; want closed and %d", n, st, d.hits.Load(), n+1)
		}
	})
	t.Run("client cancels", func(t *testing.T) {
		d := newDownstream(t, func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/hang" {
				<-req.Context().Done()
				return
			}
			_, _ = io.WriteString(w, "ok")
		})
		r := newRig(t)
		for i := range n {
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.URL+"/hang", nil)
			errc := make(chan error, 1)
			go func() {
				resp, err := r.client.Do(req)
				if err == nil {
					_ = resp.Body.Close()
				}
				errc <- err
			}()
			eventually(t, "the request to reach the destination", func() bool { return d.hits.Load() == int64(i+1) })
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("client error %v, want context.Canceled", err)
			}
			r.waitSpans(i + 1)
		}
		for _, s := range r.spans.Ended() {
			if v := attr(t, s, "error.type").AsString(); v != "client_closed" {
				t.Errorf("cancelled request has error.type %q, want client_closed", v)
			}
		}
		if st := r.breakerOf(d.hostPort()).State(); st != breaker.StateClosed {
			t.Fatalf("after %d client cancellations the breaker is %v, want closed", n, st)
		}
		if resp, body := r.get(d.URL+"/ok", nil); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("after cancellations: %d %q", resp.StatusCode, body)
		}
	})
}

func TestRequestTimeout(t *testing.T) {
	d := newDownstream(t, func(_ http.ResponseWriter, req *http.Request) { <-req.Context().Done() })
	r := newRig(t, func(s *Settings) { s.RequestTimeout = 50 * time.Millisecond })
	resp, body := r.get(d.URL+"/hang", nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", resp.StatusCode)
	}
	if p := problem(t, resp, body); !strings.Contains(p.Detail, "upstream timed out") || p.Upstream != d.hostPort() {
		t.Errorf("problem %+v", p)
	}
	if v := attr(t, r.onlySpan(), "error.type").AsString(); v != "upstream_timeout" {
		t.Errorf("error.type %q", v)
	}
}

func TestRequestTimeoutCutsSlowBody(t *testing.T) {
	d := newDownstream(t, func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-req.Context().Done()
	})
	r := newRig(t, func(s *Settings) { s.RequestTimeout = 50 * time.Millisecond })
	resp, err := r.client.Get(d.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatal("a body cut by the timeout read as complete")
	}
	if string(body) != "partial" {
		t.Errorf("got %q before the cut, want the flushed %q", body, "partial")
	}
	if v := attr(t, r.onlySpan(), "error.type").AsString(); v != "upstream_timeout" {
		t.Errorf("error.type %q", v)
	}
}

func TestEventStreamOutlivesRequestTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	stop := make(chan struct{})
	d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			_, _ = io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				_, _ = io.WriteString(w, "data: end\n\n")
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	r := newRig(t, func(s *Settings) { s.RequestTimeout = timeout })
	start := time.Now()
	resp, err := r.client.Get(d.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	var last string
	stopped := false
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			last = line
		}
		if !stopped && time.Since(start) > 4*timeout {
			close(stop) // the stream has lived four timeouts: end it
			stopped = true
		}
	}
	if err := sc.Err(); err != nil || last != "data: end" {
		t.Fatalf("stream ended with %v after %q, want a clean end", err, last)
	}
	span := r.onlySpan()
	if hasAttr(span, "error.type") {
		t.Errorf("stream span has error.type %v", attr(t, span, "error.type").String())
	}
}

func TestDisableBreaker(t *testing.T) {
	d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	r := newRig(t, func(s *Settings) { s.DisableBreaker = true })
	for range 3 + 5 {
		if resp, _ := r.get(d.URL+"/x", nil); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "" {
			t.Fatalf("got %d Retry-After %q, want the destination's own 503", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if n := d.hits.Load(); n != 8 {
		t.Errorf("destination received %d requests, want all 8 with breaking off", n)
	}
}
