package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracecar/tracecar/dedupe"
)

func TestIdempotency_SequentialRetryReplaysByteForByte(t *testing.T) {
	// Bytes that are not UTF-8, so any re-encoding would show.
	payload := append([]byte("charge:"), 0x00, 0xff, 0xfe, '\n', 0x80)
	sawKey := make(chan string, 2)
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sawKey <- req.Header.Get(headerIdempotencyKey)
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Location", "/charges/ch_1")
		h.Set("ETag", `"v1"`)
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Add("X-Multi", "one")
		h.Add("X-Multi", "two")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(payload)
	}), IdempotencySettings{}, nil)

	const key = "order-7f3a"
	first := ir.send(http.MethodPost, "/charges", key, []byte(`{"amount":100}`), "Content-Type", "application/json")
	if first.status != http.StatusCreated || !bytes.Equal(first.body, payload) || first.replayed() {
		t.Fatalf("first: %d %q replayed=%v", first.status, first.body, first.replayed())
	}
	if got := <-sawKey; got != key {
		t.Errorf("the app received Idempotency-Key %q, want %q", got, key)
	}
	second := ir.send(http.MethodPost, "/charges", key, []byte(`{"amount":100}`), "Content-Type", "application/json")
	ir.wantCalls(1)
	if second.status != first.status {
		t.Errorf("replayed status %d, want %d", second.status, first.status)
	}
	if !bytes.Equal(second.body, first.body) {
		t.Errorf("replayed body %q, want %q", second.body, first.body)
	}
	if a, b := endToEnd(first.header), endToEnd(second.header); !reflect.DeepEqual(a, b) {
		t.Errorf("replayed headers differ:\nfirst  %v\nreplay %v", a, b)
	}
	// Draft §2.6 names no replay header; Idempotent-Replayed is Stripe's.
	if !second.replayed() {
		t.Errorf("Idempotent-Replayed = %q, want true", second.header.Get(headerReplayed))
	}
	if second.header.Get("Date") == "" || second.header.Get("X-Correlation-Id") == first.header.Get("X-Correlation-Id") {
		t.Errorf("replay must carry its own Date and correlation ID: %v", second.header)
	}
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeReplayed: 1})
	ir.waitSpans(2)
	for _, ev := range []string{eventIdemClaim, eventIdemRecord, eventIdemReplay} {
		if !ir.hasEvent(ev, keyHash(key)) {
			t.Errorf("no span event %s with the key hash", ev)
		}
	}
}

func TestIdempotency_ConcurrentSameKeyExecutesOnce(t *testing.T) {
	const n = 20
	release := make(chan struct{})
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		<-release
		created(w, req)
	}), IdempotencySettings{}, nil)

	start := make(chan struct{})
	replies := make(chan reply, n)
	var ready sync.WaitGroup
	for range n {
		ready.Add(1)
		go func() {
			req := ir.newReq(t.Context(), http.MethodPost, "/transfers", "k-concurrent", []byte("amount=5"))
			ready.Done()
			<-start // the barrier: all 20 go at once
			resp, err := ir.front.Client().Do(req)
			if err != nil {
				replies <- reply{status: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			replies <- reply{status: resp.StatusCode, header: resp.Header, body: b}
		}()
	}
	ready.Wait()
	close(start)

	// Exactly one request holds the key (blocked in the app); the other 19
	// must be answered while it does.
	deadline := time.After(10 * time.Second)
	for i := range n - 1 {
		select {
		case p := <-replies:
			wantProblem(t, p, http.StatusConflict, problemInProgress)
			if p.header.Get("Retry-After") != "1" {
				t.Errorf("409 Retry-After = %q, want 1", p.header.Get("Retry-After"))
			}
		case <-deadline:
			t.Fatalf("only %d of %d duplicates answered", i, n-1)
		}
	}
	close(release)
	if p := <-replies; p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("the executing request: %d %q", p.status, p.body)
	}
	ir.wantCalls(1)
	if p := ir.send(http.MethodPost, "/transfers", "k-concurrent", []byte("amount=5")); p.status != http.StatusCreated || !p.replayed() {
		t.Fatalf("retry after completion: %d replayed=%v", p.status, p.replayed())
	}
	ir.wantCalls(1)
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeConflict: n - 1, outcomeReplayed: 1})
}

func TestIdempotency_ConcurrentWaitModeReplays(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	mem, err := dedupe.NewMemory(dedupe.MemorySettings{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mem.Close)
	store := &countingStore{Store: mem}
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(entered)
		<-release
		created(w, req)
	}), IdempotencySettings{Wait: 10 * time.Second}, store)

	replies := make(chan reply, 6)
	go func() { replies <- ir.send(http.MethodPost, "/w", "k-wait", []byte("x")) }()
	<-entered
	for range 5 {
		go func() { replies <- ir.send(http.MethodPost, "/w", "k-wait", []byte("x")) }()
	}
	// All five are waiting once each has polled the store a second time.
	waitFor(t, "the duplicates to wait", func() bool { return store.claims.Load() >= 1+2*5 })
	close(release)
	replayed := 0
	for range 6 {
		p := <-replies
		if p.status != http.StatusCreated {
			t.Fatalf("wait mode: status %d %q, want 201 for all", p.status, p.body)
		}
		if p.replayed() {
			replayed++
		}
	}
	ir.wantCalls(1)
	if replayed != 5 {
		t.Errorf("%d replies replayed, want 5", replayed)
	}
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeReplayed: 5})
}

// countingStore counts Claim calls.
type countingStore struct {
	dedupe.Store
	claims atomic.Int64
}

func (s *countingStore) Claim(ctx context.Context, scope dedupe.Scope, fp dedupe.Fingerprint, lease time.Duration) (*dedupe.Claim, *dedupe.Record, error) {
	s.claims.Add(1)
	return s.Store.Claim(ctx, scope, fp, lease)
}

func TestIdempotency_MismatchIs422(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{}, nil)
	const key = "k-mismatch"
	orig := func(method, path string, body []byte, ct string) reply {
		return ir.send(method, path, key, body, "Content-Type", ct)
	}
	if p := orig(http.MethodPost, "/orders?x=1", []byte(`{"a":1}`), "application/json"); p.status != http.StatusCreated {
		t.Fatalf("first: %d", p.status)
	}
	// Body, query and fingerprinted headers are part of the fingerprint:
	// the same scope with a different request is the key reused by mistake.
	for name, p := range map[string]reply{
		"body":         orig(http.MethodPost, "/orders?x=1", []byte(`{"a":2}`), "application/json"),
		"body spacing": orig(http.MethodPost, "/orders?x=1", []byte(`{"a": 1}`), "application/json"),
		"query":        orig(http.MethodPost, "/orders?x=2", []byte(`{"a":1}`), "application/json"),
		"content-type": orig(http.MethodPost, "/orders?x=1", []byte(`{"a":1}`), "text/plain"),
	} {
		t.Run(name, func(t *testing.T) {
			pr := wantProblem(t, p, http.StatusUnprocessableEntity, problemMismatch)
			if !strings.Contains(pr.Detail, "new key") {
				t.Errorf("detail %q does not say what to do", pr.Detail)
			}
		})
	}
	ir.wantCalls(1)

	// The route scopes the key, not the request's own path: on the same
	// route (by default, POST on any path) another path is the key reused
	// by mistake, as Stripe treats a key reused on another endpoint…
	pr := wantProblem(t, orig(http.MethodPost, "/orders/2?x=1", []byte(`{"a":1}`), "application/json"),
		http.StatusUnprocessableEntity, problemMismatch)
	_ = pr
	// …while another route (PATCH has its own default route) is another
	// operation, which executes on its own and never sees the first response.
	if p := orig(http.MethodPatch, "/orders?x=1", []byte(`{"a":1}`), "application/json"); p.status != http.StatusCreated ||
		p.replayed() || !strings.HasPrefix(string(p.body), "PATCH /orders") {
		t.Errorf("PATCH on its own route: %d replayed=%v %q, want its own execution", p.status, p.replayed(), p.body)
	}
	ir.wantCalls(2)
	if p := orig(http.MethodPost, "/orders?x=1", []byte(`{"a":1}`), "application/json"); !p.replayed() || string(p.body) != `POST /orders?x=1 "{\"a\":1}"` {
		t.Errorf("the original still replays: %d %q", p.status, p.body)
	}
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: 2, outcomeMismatch: 5, outcomeReplayed: 1})
}

func TestIdempotency_MethodChangeOnOneRouteIs422(t *testing.T) {
	// A route for any method: the same key with another method is the same
	// operation with a different request.
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{
		Routes: []IdemRoute{{Path: "/payments/*", Mode: IdemRequired}},
	}, nil)
	if p := ir.send(http.MethodPost, "/payments/7", "k-method", []byte("x")); p.status != http.StatusCreated {
		t.Fatalf("first: %d", p.status)
	}
	wantProblem(t, ir.send(http.MethodPut, "/payments/7", "k-method", []byte("x")), http.StatusUnprocessableEntity, problemMismatch)
	ir.wantCalls(1)
}

func TestIdempotency_PrincipalsAndRoutesAreIsolated(t *testing.T) {
	// Two routes: a key is scoped by principal and route.
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s for %s", req.URL.Path, req.Header.Get("Authorization"))
	}), IdempotencySettings{Routes: []IdemRoute{
		{Method: http.MethodPost, Path: "/a", Mode: IdemOptional},
		{Method: http.MethodPost, Path: "/b", Mode: IdemOptional},
	}}, nil)
	const key = "shared-key"
	type call struct{ path, auth string }
	calls := []call{{"/a", "Bearer alice"}, {"/a", "Bearer bob"}, {"/a", ""}, {"/b", "Bearer alice"}}
	for _, c := range calls {
		p := ir.send(http.MethodPost, c.path, key, []byte("same body"), "Authorization", c.auth)
		if p.status != http.StatusCreated || p.replayed() {
			t.Fatalf("%v: %d replayed=%v, want its own execution (no 422, no other's replay)", c, p.status, p.replayed())
		}
	}
	ir.wantCalls(int64(len(calls)))
	for _, c := range calls {
		p := ir.send(http.MethodPost, c.path, key, []byte("same body"), "Authorization", c.auth)
		if want := c.path + " for " + c.auth; !p.replayed() || string(p.body) != want {
			t.Errorf("%v retry: replayed=%v %q, want its own %q", c, p.replayed(), p.body, want)
		}
	}
	ir.wantCalls(int64(len(calls)))
}

func TestIdempotency_RequiredWithoutKeyIs400(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{
		Routes: []IdemRoute{{Method: http.MethodPost, Path: "/payments/*", Mode: IdemRequired}},
	}, nil)
	for _, path := range []string{"/payments", "/payments/p1"} {
		pr := wantProblem(t, ir.send(http.MethodPost, path, "", []byte("x")), http.StatusBadRequest, problemKeyMissing)
		if !strings.Contains(pr.Detail, "requires an Idempotency-Key") {
			t.Errorf("detail %q does not say what to fix", pr.Detail)
		}
	}
	ir.wantCalls(0)
	if p := ir.send(http.MethodPost, "/payments/p1", "k1", []byte("x")); p.status != http.StatusCreated {
		t.Fatalf("with a key: %d", p.status)
	}
	// Unmatched routes keep the defaults: POST optional, GET off.
	for _, tc := range []struct{ method, path string }{{http.MethodPost, "/other"}, {http.MethodGet, "/payments/p1"}, {http.MethodPost, "/paymentsX"}} {
		if p := ir.send(tc.method, tc.path, "", nil); p.status != http.StatusCreated {
			t.Errorf("%s %s without a key: %d, want passed through", tc.method, tc.path, p.status)
		}
	}
	ir.wantCalls(4)
	ir.wantCounts(map[idemOutcome]int{outcomeMissing: 2, outcomeExecuted: 1})
}

func TestIdempotency_InvalidKeysAre400(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{}, nil)
	for _, tc := range []struct {
		name string
		vals []string
		typ  string
	}{
		{"empty", []string{""}, problemKeyInvalid},
		{"empty quoted", []string{`""`}, problemKeyInvalid},
		{"256 chars", []string{strings.Repeat("k", 256)}, problemKeyInvalid},
		{"list", []string{"key-a, key-b"}, problemKeyRepeated},
		{"quoted list", []string{`"key-a", "key-b"`}, problemKeyRepeated},
		{"two field lines", []string{"key-a", "key-b"}, problemKeyRepeated},
		{"tab inside", []string{"key\tb"}, problemKeyInvalid},
		{"non-ASCII", []string{"kéy"}, problemKeyInvalid},
		{"unterminated quote", []string{`"key-a`}, problemKeyInvalid},
		{"bad escape", []string{`"key\n"`}, problemKeyInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ir.newReq(t.Context(), http.MethodPost, "/k", "", []byte("x"))
			req.Header[headerIdempotencyKey] = tc.vals
			pr := wantProblem(t, ir.do(req), http.StatusBadRequest, tc.typ)
			for _, v := range tc.vals {
				if len(v) > 3 && strings.Contains(pr.Detail, v) {
					t.Errorf("detail %q repeats the key", pr.Detail)
				}
			}
		})
	}
	// A control character never gets past the HTTP parser (RFC 9110 §5.5);
	// it is a 400 all the same, and the app is not called.
	conn, err := net.Dial("tcp", ir.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /k HTTP/1.1\r\nHost: x\r\nIdempotency-Key: ke\x01y\r\nContent-Length: 1\r\n\r\nx")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("control character: %d, want 400", resp.StatusCode)
	}
	ir.wantCalls(0)
	// The longest key allowed, and a quoted key with escapes, are fine.
	for _, k := range []string{strings.Repeat("k", 255), `"a\"b\\c"`} {
		if p := ir.send(http.MethodPost, "/k", k, []byte("x")); p.status != http.StatusCreated {
			t.Errorf("key of %d chars: %d %q", len(k), p.status, p.body)
		}
	}
	ir.wantCounts(map[idemOutcome]int{outcomeInvalid: 10, outcomeExecuted: 2})
}

func TestIdempotency_GetIgnoresKey(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprint(w, req.Method)
	}), IdempotencySettings{}, nil)
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions}
	for _, m := range methods {
		for range 2 {
			if p := ir.send(m, "/r", "k-safe", nil); p.status != http.StatusOK || p.replayed() {
				t.Errorf("%s: %d replayed=%v, want passed through", m, p.status, p.replayed())
			}
		}
	}
	ir.wantCalls(int64(2 * len(methods)))
	ir.wantCounts(nil)
}

func TestIdempotency_ReplayHopByHopHygiene(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-App-Hop")
		h.Set("X-App-Hop", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Location", "/things/1")
		h.Set("ETag", `"abc"`)
		h.Add("Set-Cookie", "s=1; HttpOnly")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "part one,")
		w.(http.Flusher).Flush() // chunked: no Content-Length from the app
		_, _ = io.WriteString(w, "part two")
	}), IdempotencySettings{}, nil)

	first := ir.send(http.MethodPost, "/things", "k-hop", []byte("x"))
	if !first.chunked || string(first.body) != "part one,part two" {
		t.Fatalf("first: chunked=%v %q", first.chunked, first.body)
	}
	replay := ir.send(http.MethodPost, "/things", "k-hop", []byte("x"))
	if !replay.replayed() || !bytes.Equal(replay.body, first.body) {
		t.Fatalf("replay: %v %q", replay.replayed(), replay.body)
	}
	// RFC 9112 §6.3: one framing; the replay is length-delimited.
	if replay.chunked || replay.length != int64(len(first.body)) || len(replay.header.Values("Content-Length")) != 1 {
		t.Errorf("replay framing: chunked=%v Content-Length %v", replay.chunked, replay.header.Values("Content-Length"))
	}
	for _, h := range []string{"X-App-Hop", "Keep-Alive", "Connection", "Transfer-Encoding"} {
		if v := replay.header.Get(h); v != "" {
			t.Errorf("replay carries hop-by-hop %s: %q", h, v)
		}
	}
	for _, h := range []string{"Location", "Etag", "Set-Cookie"} {
		if got, want := replay.header.Values(h), first.header.Values(h); !reflect.DeepEqual(got, want) || len(got) == 0 {
			t.Errorf("%s replayed as %q, want %q", h, got, want)
		}
	}
	if d, err := http.ParseTime(replay.header.Get("Date")); err != nil || !d.Equal(ir.clock.Now().Truncate(time.Second)) {
		t.Errorf("replay Date %q, want the time of the replay %v", replay.header.Get("Date"), ir.clock.Now())
	}

	// A record written elsewhere (another replica, another version) is not
	// trusted to be clean.
	req := httptest.NewRequest(http.MethodPost, "/dirty", strings.NewReader("y"))
	x := ir.handler.idem
	rt := x.route(http.MethodPost, "/dirty")
	scope := dedupe.Scope{Principal: x.principal(req), Method: rt.Method, Route: rt.Path, Key: "k-dirty"}
	c, _, err := ir.store.Claim(t.Context(), scope, x.fingerprint(req, []byte("y")), time.Minute)
	if err != nil || c == nil {
		t.Fatalf("claim: %v %v", c, err)
	}
	err = ir.store.Complete(t.Context(), c, &dedupe.Record{State: dedupe.StateCompleted, Response: &dedupe.Response{
		Status: http.StatusOK,
		Header: map[string][]string{
			"Connection": {"X-Named, close"}, "X-Named": {"hop"}, "Keep-Alive": {"timeout=1"},
			"Transfer-Encoding": {"chunked"}, "Content-Length": {"999"}, "Te": {"trailers"}, "Trailer": {"X-T"},
			"Upgrade": {"h2c"}, "Proxy-Authenticate": {"Basic"}, "Date": {"Mon, 01 Jan 2001 00:00:00 GMT"},
			"X-Correlation-Id": {"stale"}, "Traceresponse": {"stale"}, headerReplayed: {"false"}, "X-Kept": {"yes"},
		},
		Body: []byte("dirty body"),
	}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := ir.send(http.MethodPost, "/dirty", "k-dirty", []byte("y"), "X-Correlation-Id", "fresh-id")
	if !p.replayed() || string(p.body) != "dirty body" || p.length != 10 || p.chunked {
		t.Fatalf("dirty replay: %v %q length %d chunked %v", p.replayed(), p.body, p.length, p.chunked)
	}
	want := map[string]string{"X-Kept": "yes", "X-Correlation-Id": "fresh-id", headerReplayed: "true", "Content-Length": "10"}
	for k, v := range want {
		if got := p.header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for k := range p.header {
		if _, ok := want[k]; !ok && k != "Date" && k != headerTraceresponse {
			t.Errorf("unexpected replayed header %s: %q", k, p.header.Values(k))
		}
	}
	ir.wantCalls(1)
}

func TestIdempotency_KeyNeverLoggedWhole(t *testing.T) {
	const key = "key-5f1c9e0d-never-log-me"
	release := make(chan struct{})
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Block") != "" {
			<-release
		}
		created(w, req)
	}), IdempotencySettings{Lease: 10 * time.Second, Routes: []IdemRoute{
		// Its own route, so the same key there is a new operation.
		{Method: http.MethodPost, Path: "/slow", Mode: IdemOptional},
	}}, nil)
	bodies := [][]byte{
		ir.send(http.MethodPost, "/p", key, []byte("a")).body,                     // executed
		ir.send(http.MethodPost, "/p", key, []byte("a")).body,                     // replayed
		ir.send(http.MethodPost, "/p", key, []byte("b")).body,                     // mismatch
		ir.send(http.MethodPost, "/p", key+", "+key, []byte("a")).body,            // invalid
		ir.send(http.MethodPost, "/p", strings.Repeat(key, 11), []byte("a")).body, // too long
	}
	// A record that cannot be stored is logged: the lease lapses under a
	// slow execution and a second request takes the key over.
	done := make(chan reply, 1)
	go func() { done <- ir.send(http.MethodPost, "/slow", key, []byte("a"), "X-Block", "1") }()
	waitFor(t, "the slow execution to reach the app", func() bool { return ir.calls.Load() == 2 })
	bodies = append(bodies, ir.send(http.MethodPost, "/slow", key, []byte("a")).body) // 409 while it runs
	ir.clock.advance(11 * time.Second)
	bodies = append(bodies, ir.send(http.MethodPost, "/slow", key, []byte("a")).body) // takes the lapsed key over
	close(release)
	<-done
	down := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{}, downStore{})
	bodies = append(bodies, down.send(http.MethodPost, "/p", key, []byte("a")).body)

	logs := ir.log() + down.log()
	if !strings.Contains(logs, "idempotency record not stored") || !strings.Contains(logs, "idempotency store unavailable") {
		t.Fatalf("the scenarios did not log what they should:\n%s", logs)
	}
	if !strings.Contains(logs, keyHash(key)) {
		t.Errorf("logs do not name the key by its hash %s", keyHash(key))
	}
	if strings.Contains(logs, key) {
		t.Errorf("the log contains the key:\n%s", logs)
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte(key)) && !bytes.HasPrefix(b, []byte("POST")) { // the app's own echo is its business
			t.Errorf("a tracecar answer contains the key: %q", b)
		}
	}
	for _, r := range []*idemRig{ir, down} {
		for _, s := range r.spans.Ended() {
			for _, kv := range s.Attributes() {
				if strings.Contains(kv.Value.String(), key) {
					t.Errorf("span attribute %s contains the key", kv.Key)
				}
			}
			for _, ev := range s.Events() {
				for _, kv := range ev.Attributes {
					if strings.Contains(kv.Value.String(), key) {
						t.Errorf("span event %s attribute %s contains the key", ev.Name, kv.Key)
					}
				}
			}
		}
	}
}

func TestIdempotency_HeaderNameCaseAndHTTP2(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{}, nil)
	// HTTP/1.1 with a lower-case field name (names are case-insensitive,
	// RFC 9110 §5.1).
	req := ir.newReq(t.Context(), http.MethodPost, "/h", "", []byte("x"))
	req.Header["idempotency-key"] = []string{"k-case"}
	if p := ir.do(req); p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("HTTP/1.1: %d", p.status)
	}
	// The retry over HTTP/2 (h2c, prior knowledge) finds the same record.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(ir.newReq(t.Context(), http.MethodPost, "/h", "k-case", []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.Header.Get(headerReplayed) != "true" || string(body) != `POST /h "x"` {
		t.Fatalf("HTTP/2 retry: %s replayed=%q %q", resp.Proto, resp.Header.Get(headerReplayed), body)
	}
	ir.wantCalls(1)
}
