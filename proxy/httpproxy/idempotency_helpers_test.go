package httpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy"
)

// idemRig is a rig with Idempotency-Key enforcement: a real memory store on
// a fake clock, and an app that counts the requests reaching it.
type idemRig struct {
	*rig
	clock   *fakeClock
	store   dedupe.Store
	metrics *IdempotencyMetrics
	calls   atomic.Int64
}

// newIdemRig starts app behind a proxy enforcing s. store nil: a memory
// store on the rig's fake clock.
func newIdemRig(t *testing.T, app http.Handler, s IdempotencySettings, store dedupe.Store, mutate ...func(*Settings)) *idemRig {
	t.Helper()
	ir := &idemRig{clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	if s.Clock == nil {
		s.Clock = ir.clock
	}
	if store == nil {
		mem, err := dedupe.NewMemory(dedupe.MemorySettings{Clock: ir.clock}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mem.Close)
		store = mem
	}
	ir.store = store
	counted := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ir.calls.Add(1)
		app.ServeHTTP(w, req)
	})
	mutate = append([]func(*Settings){func(st *Settings) { st.Idempotency = &s }}, mutate...)
	ir.rig = newRigWith(t, counted, func(r *rig, d *Deps) {
		ir.metrics = NewIdempotencyMetrics(r.reg)
		d.IdempotencyStore = store
		d.IdempotencyMetrics = ir.metrics
	}, mutate...)
	return ir
}

// reply is a response read in full.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	chunked bool
	length  int64
}

func (p reply) replayed() bool { return p.header.Get(headerReplayed) == "true" }

// problem decodes a problem body, failing when it is not one.
func (p reply) problem(t *testing.T) proxy.Problem {
	t.Helper()
	if ct := p.header.Get("Content-Type"); ct != proxy.ContentTypeProblem {
		t.Fatalf("status %d, Content-Type %q, want a problem body; body %q", p.status, ct, p.body)
	}
	var pr proxy.Problem
	if err := json.Unmarshal(p.body, &pr); err != nil {
		t.Fatalf("problem body %q: %v", p.body, err)
	}
	return pr
}

// newReq builds a request to the proxy; hdr holds name, value pairs.
func (ir *idemRig) newReq(ctx context.Context, method, path, key string, body []byte, hdr ...string) *http.Request {
	ir.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ir.front.URL+path, rd)
	if err != nil {
		ir.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(headerIdempotencyKey, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return req
}

// send sends a request with a key (none when empty) and reads the reply.
func (ir *idemRig) send(method, path, key string, body []byte, hdr ...string) reply {
	ir.t.Helper()
	return ir.do(ir.newReq(ir.t.Context(), method, path, key, body, hdr...))
}

func (ir *idemRig) do(req *http.Request) reply {
	ir.t.Helper()
	resp, err := ir.front.Client().Do(req)
	if err != nil {
		ir.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ir.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b,
		chunked: len(resp.TransferEncoding) > 0, length: resp.ContentLength}
}

// sendUntil resends until the reply is no longer 409 "in progress" (the
// execution is being recorded), polling with a deadline.
func (ir *idemRig) sendUntil(method, path, key string, body []byte, hdr ...string) reply {
	ir.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := ir.send(method, path, key, body, hdr...)
		if p.status != http.StatusConflict || p.replayed() {
			return p
		}
		if time.Now().After(deadline) {
			ir.t.Fatalf("%s %s still 409 in progress after 5s", method, path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count is the value of tracecar_idempotency_requests_total{outcome=o}.
func (ir *idemRig) count(o idemOutcome) int {
	return int(testutil.ToFloat64(ir.metrics.requests[o]))
}

// wantCounts asserts the outcome counters; outcomes not named must be 0.
func (ir *idemRig) wantCounts(want map[idemOutcome]int) {
	ir.t.Helper()
	for o := range numOutcomes {
		if got := ir.count(o); got != want[o] {
			ir.t.Errorf("outcome %s counted %d, want %d", o, got, want[o])
		}
	}
}

func (ir *idemRig) wantCalls(n int64) {
	ir.t.Helper()
	if got := ir.calls.Load(); got != n {
		ir.t.Fatalf("app executed %d requests, want %d", got, n)
	}
}

// wantProblem asserts a problem reply's status and type.
func wantProblem(t *testing.T, p reply, status int, typ string) proxy.Problem {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body %q", p.status, status, p.body)
	}
	pr := p.problem(t)
	if pr.Type != typ || pr.Status != status || pr.Detail == "" {
		t.Fatalf("problem %+v, want type %s, status %d and a detail", pr, typ, status)
	}
	return pr
}

// endToEnd is the header without what differs per request by design: the
// Date, the replay flag, and tracecar's per-request correlation headers.
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range []string{"Date", headerReplayed, "X-Correlation-Id", headerTraceresponse} {
		delete(out, k)
	}
	return out
}

// created answers 201 with a body naming the request.
func created(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "%s %s %q", req.Method, req.URL.RequestURI(), b)
}

// downStore is a store whose backend is unreachable.
type downStore struct{}

func (downStore) Claim(context.Context, dedupe.Scope, dedupe.Fingerprint, time.Duration) (*dedupe.Claim, *dedupe.Record, error) {
	return nil, nil, fmt.Errorf("%w: dial tcp 127.0.0.1:6379: connection refused", dedupe.ErrStoreUnavailable)
}

func (downStore) Complete(context.Context, *dedupe.Claim, *dedupe.Record, time.Duration) error {
	return dedupe.ErrStoreUnavailable
}

func (downStore) Release(context.Context, *dedupe.Claim) error { return dedupe.ErrStoreUnavailable }

// hasEvent reports whether an ended span has an event name with the key hash.
func (ir *idemRig) hasEvent(name, keyHash string) bool {
	for _, s := range ir.spans.Ended() {
		for _, ev := range s.Events() {
			if ev.Name != name {
				continue
			}
			for _, kv := range ev.Attributes {
				if kv.Key == attrIdemKeyHash && kv.Value.AsString() == keyHash {
					return true
				}
			}
		}
	}
	return false
}

func keyHash(key string) string { return dedupe.Scope{Key: key}.KeyHash() }

// waitFor polls cond until it holds, failing after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
