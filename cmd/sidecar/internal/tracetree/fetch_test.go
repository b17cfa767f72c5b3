package tracetree

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const ordersTraceID = "0af7651916cd43dd8448eb211c80319c"

// jaegerNotFound is the body Jaeger v1.76.0 sends with its 404.
const jaegerNotFound = `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`

// fixtureServer serves the recorded answer for ordersTraceID and Jaeger's 404
// for every other trace.
func fixtureServer(t *testing.T) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile("testdata/orders.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/traces/"+ordersTraceID {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(jaegerNotFound))
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetch(t *testing.T) {
	srv := fixtureServer(t)
	// Upper case and a trailing slash on the base are accepted.
	tr, err := Fetch(context.Background(), srv.Client(), srv.URL+"/", strings.ToUpper(ordersTraceID))
	if err != nil {
		t.Fatal(err)
	}
	if tr.TraceID != ordersTraceID || len(tr.Spans) != 3 {
		t.Fatalf("got trace %s with %d spans", tr.TraceID, len(tr.Spans))
	}
	root := tr.Roots[0]
	if root.Service != "demo-sidecar" || len(root.Children) != 1 || root.Children[0].Operation != "GET /orders/{id}" {
		t.Errorf("root = %s %s with %d children", root.Service, root.Operation, len(root.Children))
	}
}

func TestFetchNotFound(t *testing.T) {
	srv := fixtureServer(t)
	_, err := Fetch(context.Background(), srv.Client(), srv.URL, "4bf92f3577b34da6a3ce929d0e0e4736")
	want := "trace 4bf92f3577b34da6a3ce929d0e0e4736 not found in Jaeger at " + srv.URL
	if err == nil || err.Error() != want || !errors.Is(err, ErrNotFound) {
		t.Errorf("error = %v, want %q wrapping ErrNotFound", err, want)
	}
}

func TestFetchEmptyData(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"data":[],"total":0}`))
	}))
	defer srv.Close()
	_, err := Fetch(context.Background(), srv.Client(), srv.URL, ordersTraceID)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("error = %v, want ErrNotFound", err)
	}
}

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    error
		wantMsg string
	}{
		{"malformed JSON", http.StatusOK, `{"data":[{"traceID":`, ErrMalformed, "malformed Jaeger response"},
		{"placeholder page", http.StatusOK, `<!doctype html><title>Jaeger</title>`, ErrMalformed, "malformed Jaeger response"},
		{"other trace", http.StatusOK, `{"data":[{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spans":[{"spanID":"1"}]}]}`,
			ErrMalformed, "answer holds trace 4bf92f3577b34da6a3ce929d0e0e4736"},
		{"server error", http.StatusServiceUnavailable, `{"errors":[{"code":503,"msg":"storage down"}]}`,
			ErrUnavailable, "503 Service Unavailable: storage down"},
		{"bad request", http.StatusBadRequest, `{"errors":[{"code":400,"msg":"bad id"}]}`,
			nil, "answered 400 Bad Request: bad id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := Fetch(context.Background(), srv.Client(), srv.URL, ordersTraceID)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantMsg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want it to wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name the query API %s", err, srv.URL)
			}
		})
	}
}

func TestFetchRejectsBadInputWithoutRequest(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, id := range []string{"", "xyz", "4bf92f3577b34da6a3ce929d0e0e47361", "00000000000000000000000000000000", "4bf9/../x"} {
		if _, err := Fetch(context.Background(), srv.Client(), srv.URL, id); !errors.Is(err, ErrInvalidTraceID) {
			t.Errorf("Fetch(%q) error = %v, want ErrInvalidTraceID", id, err)
		}
	}
	for _, base := range []string{"", "127.0.0.1:16686", "ftp://host", "http://"} {
		if _, err := Fetch(context.Background(), srv.Client(), base, ordersTraceID); err == nil || !strings.Contains(err.Error(), "jaeger query URL") {
			t.Errorf("Fetch(base %q) error = %v, want a query URL error", base, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests sent for bad input", n)
	}
}

func TestFetchUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	_, err := Fetch(context.Background(), nil, base, ordersTraceID)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), base) {
		t.Errorf("error = %v, want ErrUnavailable naming %s", err, base)
	}
}

// TestWait: the trace is missing, then partial, then complete; Wait returns the
// complete one.
func TestWait(t *testing.T) {
	full, err := os.ReadFile("testdata/orders.json")
	if err != nil {
		t.Fatal(err)
	}
	partial := withoutSpan(t, full, "016fce455eedc742")
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(jaegerNotFound))
		case 2:
			_, _ = w.Write(partial)
		default:
			_, _ = w.Write(full)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Wait(ctx, srv.Client(), srv.URL, ordersTraceID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spans) != 3 || calls.Load() != 3 {
		t.Errorf("Wait returned %d spans after %d calls, want 3 spans after 3 calls", len(got.Spans), calls.Load())
	}
}

// withoutSpan returns the recorded answer without span id.
func withoutSpan(t *testing.T, body []byte, id string) []byte {
	t.Helper()
	var answer struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || len(answer.Data) != 1 {
		t.Fatalf("fixture: %v", err)
	}
	spans := answer.Data[0]["spans"].([]any)
	spans = slices.DeleteFunc(spans, func(s any) bool { return s.(map[string]any)["spanID"] == id })
	if len(spans) != 2 {
		t.Fatalf("fixture: span %s not found", id)
	}
	answer.Data[0]["spans"] = spans
	out, err := json.Marshal(answer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWaitDeadline(t *testing.T) {
	srv := fixtureServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Wait(ctx, srv.Client(), srv.URL, "4bf92f3577b34da6a3ce929d0e0e4736", 1)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNotFound) {
		t.Errorf("error = %v, want DeadlineExceeded and ErrNotFound", err)
	}

	// A trace short of spans when the deadline hits comes back with the error.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	tr, err := Wait(ctx2, srv.Client(), srv.URL, ordersTraceID, 4)
	if !errors.Is(err, context.DeadlineExceeded) || tr == nil || len(tr.Spans) != 3 {
		t.Errorf("Wait = %v, %v; want the 3-span trace and DeadlineExceeded", tr, err)
	}
	if err != nil && !strings.Contains(err.Error(), "3 of 4 spans") {
		t.Errorf("error %q does not say how many spans arrived", err)
	}
}

func TestWaitStopsOnPermanentError(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte("not json"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Wait(ctx, srv.Client(), srv.URL, ordersTraceID, 1)
	if !errors.Is(err, ErrMalformed) || calls.Load() != 1 {
		t.Errorf("Wait error = %v after %d calls, want ErrMalformed after 1", err, calls.Load())
	}
}
