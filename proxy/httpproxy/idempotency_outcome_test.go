package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracecar/tracecar/proxy/breaker"
)

func TestIdempotency_ServerErrorIsReplayed(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/"))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "answer "+req.URL.Path)
	}), IdempotencySettings{}, nil)
	// Every response the app produced is an outcome of the one execution:
	// 4xx and 5xx are recorded and replayed, 503 and 504 included (only
	// ReleaseStatuses, [429] by default, are not).
	codes := []int{200, 400, 402, 500, 503, 504}
	for _, code := range codes {
		path := "/" + strconv.Itoa(code)
		first := ir.send(http.MethodPost, path, "k"+path, []byte("x"))
		again := ir.send(http.MethodPost, path, "k"+path, []byte("x"))
		if first.status != code || again.status != code || !again.replayed() || !bytes.Equal(first.body, again.body) {
			t.Errorf("%d: first %d %q, retry %d replayed=%v %q", code, first.status, first.body, again.status, again.replayed(), again.body)
		}
	}
	ir.wantCalls(int64(len(codes)))
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: len(codes), outcomeReplayed: len(codes)})
}

func TestIdempotency_AmbiguousFailuresAreRecorded(t *testing.T) {
	// After the request was sent, a timeout or a reset leaves the outcome
	// unknown: the app may have executed it. The 504/502 answered is
	// recorded and replayed; the app is never asked twice.
	block := make(chan struct{})
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/slow":
			<-block
		case "/broken":
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/reset":
			conn, _, _ := http.NewResponseController(w).Hijack()
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
		}
	}), IdempotencySettings{}, nil, func(s *Settings) { s.ResponseHeaderTimeout = 200 * time.Millisecond })
	t.Cleanup(func() { close(block) }) // before the rig's cleanups, which wait for the app

	for _, tc := range []struct {
		path   string
		status int
	}{{"/slow", http.StatusGatewayTimeout}, {"/reset", http.StatusBadGateway}} {
		first := ir.send(http.MethodPost, tc.path, "k"+tc.path, []byte("x"))
		again := ir.send(http.MethodPost, tc.path, "k"+tc.path, []byte("x"))
		if first.status != tc.status || first.replayed() {
			t.Fatalf("%s: first %d, want %d", tc.path, first.status, tc.status)
		}
		if again.status != tc.status || !again.replayed() || !bytes.Equal(again.body, first.body) {
			t.Errorf("%s: retry %d replayed=%v %q, want the recorded problem %q", tc.path, again.status, again.replayed(), again.body, first.body)
		}
		first.problem(t)
	}
	ir.wantCalls(2)

	// A body that breaks off: the app ran the request and answered, but
	// what it said is lost. Executed, not replayable.
	// The client's side of it is a connection closed before the whole
	// response (a fresh connection, so Go's client does not retry on its own).
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(ir.newReq(t.Context(), http.MethodPost, "/broken", "k-broken", []byte("x")))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("broken body: the client got a whole response")
	}
	p := ir.sendUntil(http.MethodPost, "/broken", "k-broken", []byte("x"))
	pr := wantProblem(t, p, http.StatusConflict, problemNotReplayable)
	if !p.replayed() || !strings.Contains(pr.Detail, "broke off") {
		t.Errorf("retry: replayed=%v detail %q", p.replayed(), pr.Detail)
	}
	ir.wantCalls(3)
}

func TestIdempotency_DialFailureReleasesKey(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{}, nil)
	// The first connection goes to a closed port: a real refused dial.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	_ = ln.Close()
	var refused atomic.Bool
	refused.Store(true)
	dialer := &net.Dialer{Timeout: time.Second}
	ir.handler.tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if refused.CompareAndSwap(true, false) {
			addr = closedAddr
		}
		return dialer.DialContext(ctx, network, addr)
	}

	first := ir.send(http.MethodPost, "/pay", "k-dial", []byte("x"))
	wantProblem(t, first, http.StatusBadGateway, "")
	if first.replayed() {
		t.Fatal("a dial failure is not a replay")
	}
	ir.wantCalls(0)
	// The app never got it, so the key was released: the retry executes.
	if p := ir.send(http.MethodPost, "/pay", "k-dial", []byte("x")); p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("retry after dial failure: %d replayed=%v", p.status, p.replayed())
	}
	if p := ir.send(http.MethodPost, "/pay", "k-dial", []byte("x")); !p.replayed() {
		t.Fatalf("third: not replayed")
	}
	ir.wantCalls(1)
	ir.wantCounts(map[idemOutcome]int{outcomeReleased: 1, outcomeExecuted: 1, outcomeReplayed: 1})
	ir.waitSpans(3)
	if !ir.hasEvent(eventIdemRelease, keyHash("k-dial")) {
		t.Error("no idempotency.release span event")
	}
}

func TestIdempotency_ReleaseStatusesReleaseKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		first    int
	}{
		{"default 429", nil, http.StatusTooManyRequests},
		{"configured 503", []int{http.StatusServiceUnavailable}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", "3")
					w.WriteHeader(tc.first)
					_, _ = io.WriteString(w, "slow down")
					return
				}
				created(w, req)
			}), IdempotencySettings{ReleaseStatuses: tc.statuses}, nil)
			if p := ir.send(http.MethodPost, "/q", "k-rel", []byte("x")); p.status != tc.first || p.header.Get("Retry-After") != "3" || string(p.body) != "slow down" {
				t.Fatalf("first: %d %q, want the app's %d passed on", p.status, p.body, tc.first)
			}
			if p := ir.send(http.MethodPost, "/q", "k-rel", []byte("x")); p.status != http.StatusCreated || p.replayed() {
				t.Fatalf("retry: %d replayed=%v, want a new execution", p.status, p.replayed())
			}
			if p := ir.send(http.MethodPost, "/q", "k-rel", []byte("x")); p.status != http.StatusCreated || !p.replayed() {
				t.Fatalf("third: %d replayed=%v, want the 201 replayed", p.status, p.replayed())
			}
			ir.wantCalls(2)
			ir.wantCounts(map[idemOutcome]int{outcomeReleased: 1, outcomeExecuted: 1, outcomeReplayed: 1})
		})
	}
}

func TestIdempotency_BreakerOpenReleasesKey(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		created(w, req)
	}), IdempotencySettings{}, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	ir.handler.breaker = breaker.New(ir.upstream.URL, breaker.Settings{
		ConsecutiveFailures: 1, FailureRatio: -1, OpenTimeout: 10 * time.Second,
		SuccessesToClose: 1, Clock: clock, Rand: func() float64 { return 0.5 },
	}, nil)
	if p := ir.send(http.MethodPost, "/trip", "", nil); p.status != http.StatusInternalServerError {
		t.Fatalf("trip: %d", p.status)
	}
	fail.Store(false)
	p := ir.send(http.MethodPost, "/pay", "k-open", []byte("x"))
	if p.status != http.StatusServiceUnavailable || p.header.Get("Retry-After") == "" {
		t.Fatalf("while open: %d, want the breaker's 503", p.status)
	}
	clock.advance(time.Minute)
	if p := ir.send(http.MethodPost, "/pay", "k-open", []byte("x")); p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("after the open period: %d replayed=%v, want an execution", p.status, p.replayed())
	}
	ir.wantCalls(2)
	ir.wantCounts(map[idemOutcome]int{outcomeReleased: 1, outcomeExecuted: 1})
}

func TestIdempotency_ClientDisconnectStillRecorded(t *testing.T) {
	t.Run("before the response", func(t *testing.T) {
		entered, proceed := make(chan struct{}), make(chan struct{})
		ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			close(entered)
			<-proceed
			created(w, req)
		}), IdempotencySettings{}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			resp, err := ir.front.Client().Do(ir.newReq(ctx, http.MethodPost, "/pay", "k-gone", []byte("x")))
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		<-entered
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("the client request should have been cancelled")
		}
		close(proceed)
		p := ir.sendUntil(http.MethodPost, "/pay", "k-gone", []byte("x"))
		if p.status != http.StatusCreated || !p.replayed() || string(p.body) != `POST /pay "x"` {
			t.Fatalf("retry: %d replayed=%v %q, want the recorded 201", p.status, p.replayed(), p.body)
		}
		ir.wantCalls(1)
	})
	t.Run("mid body", func(t *testing.T) {
		// Large enough that writing the rest to the gone client fails, so
		// tracecar itself reads what is left from the app.
		half := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
		proceed := make(chan struct{})
		ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(2*len(half)))
			_, _ = w.Write(half)
			w.(http.Flusher).Flush()
			<-proceed
			_, _ = w.Write(half)
		}), IdempotencySettings{MaxResponseBytes: 8 << 20}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		resp, err := ir.front.Client().Do(ir.newReq(ctx, http.MethodPost, "/dl", "k-mid", []byte("x")))
		if err != nil {
			t.Fatal(err)
		}
		// Not all of the first half: the proxy may hold its last bytes in
		// its write buffer until the app sends more.
		if _, err := io.ReadFull(resp.Body, make([]byte, len(half)/2)); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		close(proceed)
		p := ir.sendUntil(http.MethodPost, "/dl", "k-mid", []byte("x"))
		if !p.replayed() || !bytes.Equal(p.body, append(half[:len(half):len(half)], half...)) {
			t.Fatalf("retry: %d replayed=%v %d bytes, want the whole recorded body", p.status, p.replayed(), len(p.body))
		}
		ir.wantCalls(1)
	})
}

func TestIdempotency_LeaseAndRetentionExpiry(t *testing.T) {
	t.Run("retention", func(t *testing.T) {
		ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{Retention: time.Hour}, nil)
		ir.send(http.MethodPost, "/r", "k-ret", []byte("x"))
		ir.clock.advance(time.Hour - time.Second)
		if p := ir.send(http.MethodPost, "/r", "k-ret", []byte("x")); !p.replayed() {
			t.Fatal("replayed within retention: no")
		}
		// Expiry is read from the record's own timestamps: at ExpiresAt it
		// is gone, whatever the cache still holds.
		ir.clock.advance(time.Second)
		if p := ir.send(http.MethodPost, "/r", "k-ret", []byte("x")); p.replayed() || p.status != http.StatusCreated {
			t.Fatalf("at expiry: %d replayed=%v, want a new execution", p.status, p.replayed())
		}
		ir.wantCalls(2)
	})
	t.Run("lease", func(t *testing.T) {
		release := make(chan struct{})
		var run atomic.Int64
		ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			n := run.Add(1)
			if req.Header.Get("X-Block") != "" {
				<-release
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "run "+strconv.FormatInt(n, 10))
		}), IdempotencySettings{Lease: 10 * time.Second}, nil)
		firstc := make(chan reply, 1)
		go func() { firstc <- ir.send(http.MethodPost, "/l", "k-lease", []byte("x"), "X-Block", "1") }()
		waitFor(t, "the first execution", func() bool { return run.Load() == 1 })
		wantProblem(t, ir.send(http.MethodPost, "/l", "k-lease", []byte("x")), http.StatusConflict, problemInProgress)

		// Past its lease a claim is presumed dead: the next request takes
		// the key over, and the stale owner can no longer record.
		ir.clock.advance(11 * time.Second)
		if p := ir.send(http.MethodPost, "/l", "k-lease", []byte("x")); p.status != http.StatusCreated || string(p.body) != "run 2" || p.replayed() {
			t.Fatalf("after the lease: %d %q", p.status, p.body)
		}
		close(release)
		if p := <-firstc; p.status != http.StatusCreated || string(p.body) != "run 1" {
			t.Fatalf("the stale execution's client: %d %q, want its own response", p.status, p.body)
		}
		if p := ir.send(http.MethodPost, "/l", "k-lease", []byte("x")); !p.replayed() || string(p.body) != "run 2" {
			t.Fatalf("retry: replayed=%v %q, want run 2 (the stale owner never overwrites)", p.replayed(), p.body)
		}
		ir.wantCalls(2)
		ir.wantCounts(map[idemOutcome]int{outcomeConflict: 1, outcomeExecuted: 1, outcomeRecordFailed: 1, outcomeReplayed: 1})
	})
}

func TestIdempotency_OversizedRequestIs413(t *testing.T) {
	ir := newIdemRig(t, http.HandlerFunc(created), IdempotencySettings{MaxRequestBytes: 1024}, nil)
	big := bytes.Repeat([]byte("b"), 2048)
	pr := wantProblem(t, ir.send(http.MethodPost, "/u", "k-big", big), http.StatusRequestEntityTooLarge, problemTooLarge)
	if !strings.Contains(pr.Detail, "1024") {
		t.Errorf("detail %q does not give the limit", pr.Detail)
	}
	// Chunked: the length is unknown until the body is read.
	req := ir.newReq(t.Context(), http.MethodPost, "/u", "k-big", nil)
	req.Body = io.NopCloser(bytes.NewReader(big))
	wantProblem(t, ir.do(req), http.StatusRequestEntityTooLarge, problemTooLarge)
	ir.wantCalls(0)

	// Nothing was recorded: the same key with a body within the limit
	// executes. Sent chunked, it fingerprints like the same bytes sent with
	// a Content-Length.
	small := bytes.Repeat([]byte("s"), 1024)
	req = ir.newReq(t.Context(), http.MethodPost, "/u", "k-big", nil)
	req.Body = io.NopCloser(bytes.NewReader(small))
	if p := ir.do(req); p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("chunked within the limit: %d", p.status)
	}
	if p := ir.send(http.MethodPost, "/u", "k-big", small); !p.replayed() {
		t.Fatalf("same bytes with Content-Length: %d replayed=%v, want the replay", p.status, p.replayed())
	}
	ir.wantCalls(1)
	ir.wantCounts(map[idemOutcome]int{outcomeTooLarge: 2, outcomeExecuted: 1, outcomeReplayed: 1})
}

func TestIdempotency_OversizedResponseNotReplayable(t *testing.T) {
	big := bytes.Repeat([]byte("r"), 4096)
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		case "/chunked":
			_, _ = w.Write(big[:1000])
			w.(http.Flusher).Flush()
			_, _ = w.Write(big[1000:])
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "data: two\n\n")
		}
	}), IdempotencySettings{MaxResponseBytes: 1024}, nil)
	for path, want := range map[string][]byte{"/sized": big, "/chunked": big, "/sse": []byte("data: one\n\ndata: two\n\n")} {
		first := ir.send(http.MethodPost, path, "k"+path, []byte("x"))
		if first.status != http.StatusOK || !bytes.Equal(first.body, want) {
			t.Fatalf("%s: first response %d, %d bytes; want all %d bytes delivered", path, first.status, len(first.body), len(want))
		}
		again := ir.send(http.MethodPost, path, "k"+path, []byte("x"))
		pr := wantProblem(t, again, http.StatusConflict, problemNotReplayable)
		if !again.replayed() || !strings.Contains(pr.Detail, "executed") {
			t.Errorf("%s retry: replayed=%v detail %q", path, again.replayed(), pr.Detail)
		}
	}
	ir.wantCalls(3)
	ir.wantCounts(map[idemOutcome]int{outcomeExecuted: 3, outcomeNotReplayable: 3})
}

func TestIdempotency_StoreUnavailable(t *testing.T) {
	got := make(chan string, 1)
	ir := newIdemRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- string(b)
		created(w, req)
	}), IdempotencySettings{Routes: []IdemRoute{{Path: "/must/*", Mode: IdemRequired}}}, downStore{})

	// Required: fail closed.
	p := ir.send(http.MethodPost, "/must/pay", "k-down", []byte("x"))
	wantProblem(t, p, http.StatusServiceUnavailable, problemStore)
	if p.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	ir.wantCalls(0)
	// Optional: fail open, the body intact.
	if p := ir.send(http.MethodPost, "/may", "k-down", []byte("the body")); p.status != http.StatusCreated || p.replayed() {
		t.Fatalf("optional route: %d", p.status)
	}
	if b := <-got; b != "the body" {
		t.Errorf("the app got body %q", b)
	}
	ir.wantCalls(1)
	ir.wantCounts(map[idemOutcome]int{outcomeStoreUnavailable: 2})
	logs := ir.log()
	for _, want := range []string{"request answered 503", "request passed through unprotected", keyHash("k-down")} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestIdempotency_ExecutionBoundedByLease(t *testing.T) {
	block := make(chan struct{})
	ir := newIdemRig(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }),
		IdempotencySettings{Lease: 300 * time.Millisecond}, nil)
	t.Cleanup(func() { close(block) }) // before the rig's cleanups, which wait for the app
	// An execution never outlives its claim: it is cut just before the
	// lease ends, and the cut is recorded as the 504 it answered.
	first := ir.send(http.MethodPost, "/slow", "k-bound", []byte("x"))
	pr := wantProblem(t, first, http.StatusGatewayTimeout, "")
	if !strings.Contains(pr.Detail, "lease") {
		t.Errorf("detail %q does not name the lease", pr.Detail)
	}
	again := ir.send(http.MethodPost, "/slow", "k-bound", []byte("x"))
	if !again.replayed() || !bytes.Equal(again.body, first.body) {
		t.Fatalf("retry: %d replayed=%v", again.status, again.replayed())
	}
	ir.wantCalls(1)
}

func TestIdempotency_InvalidSettingsAreRejected(t *testing.T) {
	u, _ := url.Parse("http://app.local")
	for _, s := range []IdempotencySettings{
		{Routes: []IdemRoute{{Path: "payments", Mode: IdemRequired}}},
		{Routes: []IdemRoute{{Path: "/a/*/b", Mode: IdemRequired}}},
		{Routes: []IdemRoute{{Path: "/a", Mode: IdemMode(7)}}},
		{MaxRequestBytes: -1},
		{Lease: -time.Second},
		{ReleaseStatuses: []int{42}},
	} {
		_, err := New(Settings{Upstream: u, Idempotency: &s}, Deps{})
		if !errors.Is(err, ErrIdempotencySettings) {
			t.Errorf("%+v: error %v, want ErrIdempotencySettings", s, err)
		}
	}
}
