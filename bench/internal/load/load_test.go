package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// seen records what a test server received.
type seen struct {
	mu     sync.Mutex
	n      int
	keys   map[string]bool
	conns  map[string]bool
	protos map[int]int
	absURL int
}

func newSeen() *seen {
	return &seen{keys: map[string]bool{}, conns: map[string]bool{}, protos: map[int]int{}}
}

func (s *seen) note(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		s.keys[k] = true
	}
	s.conns[r.RemoteAddr] = true
	s.protos[r.ProtoMajor]++
	if strings.HasPrefix(r.RequestURI, "http://") {
		s.absURL++
	}
}

func echoServer(t *testing.T, s *seen) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.note(r)
		_, _ = io.Copy(w, r.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestOpenLoopSendsTheSchedule: every scheduled request is sent and
// measured whatever the timing, with a unique Idempotency-Key each, over
// at most Conns connections, and the marks come in order.
func TestOpenLoopSendsTheSchedule(t *testing.T) {
	s := newSeen()
	srv := echoServer(t, s)
	var marks []string
	res, err := Run(context.Background(), Options{
		URL: srv.URL, BodySize: 16, ExpectBytes: 16, Rate: 400, Conns: 4,
		Warmup: 100 * time.Millisecond, Duration: 250 * time.Millisecond,
		IdempotencyKeys: true,
		OnMark:          func(m string) { marks = append(marks, m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.OK != 100 || res.Errors != 0 || res.Statuses["200"] != 100 {
		t.Fatalf("measured %d requests (%d ok, %d errors, statuses %v), want 100 ok", res.Requests, res.OK, res.Errors, res.Statuses)
	}
	if res.Total != 140 || s.n != 140 || len(s.keys) != 140 {
		t.Fatalf("total %d, server saw %d requests with %d distinct keys; want 140 of each", res.Total, s.n, len(s.keys))
	}
	if len(s.conns) > 4 {
		t.Fatalf("%d connections for 4 workers", len(s.conns))
	}
	if res.Method != http.MethodPost || res.Latency.Count != 100 || res.Lag.Count != 100 {
		t.Fatalf("method %s, latency count %d, lag count %d", res.Method, res.Latency.Count, res.Lag.Count)
	}
	if len(marks) != 2 || marks[0] != MarkStart || marks[1] != MarkStop {
		t.Fatalf("marks %v, want [start stop]", marks)
	}
	if res.WindowRequests < 1 || res.WindowRequests > res.Total {
		t.Fatalf("window requests %d outside 1..%d", res.WindowRequests, res.Total)
	}
}

// TestFailuresInvalidateTheRun: answers that are not 200, or of the wrong
// size, are errors, and a run with errors is invalid.
func TestFailuresInvalidateTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" {
			_, _ = w.Write([]byte("abc"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for path, wantErr := range map[string]string{"/down": "status 503", "/short": "3 bytes, want 1024"} {
		res, err := Run(context.Background(), Options{
			URL: srv.URL + path, ExpectBytes: 1024, Rate: 200, Conns: 2,
			Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Valid || res.Errors != res.Requests || res.Requests != 20 {
			t.Fatalf("%s: valid %v, %d errors of %d requests; want invalid, 20 of 20", path, res.Valid, res.Errors, res.Requests)
		}
		if len(res.ErrorSamples) != 1 || !strings.Contains(res.ErrorSamples[0], wantErr) {
			t.Fatalf("%s: error samples %q, want one with %q", path, res.ErrorSamples, wantErr)
		}
	}
}

func TestClosedLoop(t *testing.T) {
	s := newSeen()
	srv := echoServer(t, s)
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Mode: ModeClosed, Conns: 3,
		Warmup: 20 * time.Millisecond, Duration: 150 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Requests == 0 || res.OK != res.Requests || res.TargetRPS != 0 {
		t.Fatalf("closed loop: %+v", res)
	}
	if res.Lag.Max != 0 {
		t.Fatalf("a closed loop has no schedule, but lag max is %v µs", res.Lag.Max)
	}
	if res.Total > int64(s.n) || len(s.conns) > 3 {
		t.Fatalf("%d answers, server saw %d requests on %d connections", res.Total, s.n, len(s.conns))
	}
}

// TestH2C: with ProtoH2C every request reaches the server over HTTP/2.
func TestH2C(t *testing.T) {
	s := newSeen()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.note(r)
		_, _ = w.Write(make([]byte, 100))
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		URL: srv.URL, Proto: ProtoH2C, ExpectBytes: 100, Rate: 200, Conns: 2,
		Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || s.protos[2] != s.n || s.n == 0 {
		t.Fatalf("%d ok; server saw %d requests, by HTTP major version %v", res.OK, s.n, s.protos)
	}
}

// TestThroughProxy: with Proxy set, requests go to the proxy in absolute
// form (the egress path); the test's proxy answers them itself.
func TestThroughProxy(t *testing.T) {
	s := newSeen()
	proxy := echoServer(t, s)
	res, err := Run(context.Background(), Options{
		URL: "http://app.invalid/echo", Proxy: proxy.URL, BodySize: 8, ExpectBytes: 8,
		Rate: 200, Conns: 2, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || s.absURL != s.n || s.n != int(res.Total) {
		t.Fatalf("%d ok; proxy saw %d requests, %d in absolute form, of %d sent", res.OK, s.n, s.absURL, res.Total)
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Proto: ProtoWS, BodySize: 64, ExpectBytes: 64,
		Rate: 200, Conns: 2, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || res.Errors != 0 || res.Statuses["101"] != 20 {
		t.Fatalf("%d messages echoed, %d errors, statuses %v; want 20", res.OK, res.Errors, res.Statuses)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{URL: "http://127.0.0.1:1", Mode: "burst"},
		{URL: "http://127.0.0.1:1", Proto: "spdy"},
		{URL: "http://127.0.0.1:1", Rate: -1},
		{URL: "http://127.0.0.1:1", Proxy: "::"},
		{URL: "http://127.0.0.1:1", Proto: ProtoGRPC, Proxy: "http://127.0.0.1:2"},
		{URL: "http://127.0.0.1:1/some/path", Proto: ProtoGRPC},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted bad options", o)
		}
	}
}
