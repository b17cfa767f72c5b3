package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// appReply is the JSON the demo app answers with.
type appReply struct {
	CorrelationID string `json:"correlation_id"`
	Traceparent   string `json:"traceparent_received"`
	TraceID       string `json:"trace_id"`
	SpanID        string `json:"span_id"`
}

// send sends one request through the sidecar and returns the response with its
// body read.
func send(t *testing.T, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, sidecarURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

func decodeReply(t *testing.T, body []byte) appReply {
	t.Helper()
	var r appReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("demo app reply %q: %v", body, err)
	}
	return r
}

var traceresponseRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)

// traceresponse returns the trace-id and parent-id of the response's
// traceresponse header (Trace Context Level 2), failing the test without one.
func traceresponse(t *testing.T, resp *http.Response) (traceID, spanID string) {
	t.Helper()
	v := resp.Header.Values("Traceresponse")
	if len(v) != 1 {
		t.Fatalf("response has %d traceresponse headers %q, want 1", len(v), v)
	}
	m := traceresponseRE.FindStringSubmatch(v[0])
	if m == nil {
		t.Fatalf("traceresponse %q is not 00-<32 hex>-<16 hex>-<2 hex>", v[0])
	}
	return m[1], m[2]
}

// correlationID returns the single X-Correlation-ID of the response.
func correlationID(t *testing.T, resp *http.Response) string {
	t.Helper()
	v := resp.Header.Values("X-Correlation-ID")
	if len(v) != 1 || v[0] == "" {
		t.Fatalf("response X-Correlation-ID = %q, want one non-empty value", v)
	}
	return v[0]
}

// randomHex returns n random bytes as lowercase hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] |= 0x10 // never all zeros, which W3C Trace Context makes invalid
	return hex.EncodeToString(b)
}

func wantTag(t *testing.T, tr jaegerTrace, s jaegerSpan, key, want string) {
	t.Helper()
	if got, ok := s.tag(key); !ok || got != want {
		t.Errorf("%s span %s: tag %s = %q (present %v), want %q\n%s", s.service, s.SpanID, key, got, ok, want, tr)
	}
}

// TestCallerTraceIsContinued: a caller's valid traceparent and correlation ID
// are continued: same trace, sidecar span under the caller's span, app spans
// under the sidecar's, correlation ID on the span and back to the caller.
func TestCallerTraceIsContinued(t *testing.T) {
	t.Parallel()
	callerTrace, callerSpan := randomHex(t, 16), randomHex(t, 8)
	sentCID := "e2e-caller-" + randomHex(t, 4)
	resp, body := send(t, http.MethodGet, "/orders/7", http.Header{
		"Traceparent":      {"00-" + callerTrace + "-" + callerSpan + "-01"},
		"X-Correlation-Id": {sentCID},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200; body %s", resp.Status, body)
	}
	gotCID := correlationID(t, resp)
	if gotCID != sentCID {
		t.Errorf("X-Correlation-ID back = %q, want the one sent, %q", gotCID, sentCID)
	}
	respTrace, respParent := traceresponse(t, resp)
	if respTrace != callerTrace {
		t.Errorf("traceresponse trace-id = %s, want the caller's %s", respTrace, callerTrace)
	}

	tr := waitTrace(t, callerTrace, 3) // sidecar, app, app's "load order"
	if tr.id != callerTrace {
		t.Errorf("Jaeger trace ID = %s, want the caller's %s", tr.id, callerTrace)
	}
	sc := tr.serverSpan(t, sidecarService)
	if sc.OperationName != "GET" {
		t.Errorf("sidecar span name = %q, want GET", sc.OperationName)
	}
	if p := sc.parent(); p != callerSpan {
		t.Errorf("sidecar span's parent = %q, want the caller's span %s\n%s", p, callerSpan, tr)
	}
	if respParent != sc.SpanID {
		t.Errorf("traceresponse parent-id = %s, want the sidecar's span %s", respParent, sc.SpanID)
	}
	wantTag(t, tr, sc, "tracecar.correlation_id", gotCID)

	app := tr.serverSpan(t, appService)
	if p := app.parent(); p != sc.SpanID {
		t.Errorf("app span's parent = %q, want the sidecar's span %s\n%s", p, sc.SpanID, tr)
	}
	var load *jaegerSpan
	for i := range tr.spans {
		if tr.spans[i].OperationName == "load order" {
			load = &tr.spans[i]
		}
	}
	if load == nil || load.parent() != app.SpanID {
		t.Errorf("no \"load order\" span under the app's span %s\n%s", app.SpanID, tr)
	}

	// What the app itself received.
	reply := decodeReply(t, body)
	if want := "00-" + callerTrace + "-" + sc.SpanID + "-01"; reply.Traceparent != want {
		t.Errorf("app received traceparent %q, want %q (parent = sidecar span)", reply.Traceparent, want)
	}
	if reply.CorrelationID != sentCID {
		t.Errorf("app received X-Correlation-ID %q, want %q", reply.CorrelationID, sentCID)
	}
}

// TestNewTraceWithoutTraceparent: with no trace context the sidecar starts a
// trace, is its root, and mints a correlation ID.
func TestNewTraceWithoutTraceparent(t *testing.T) {
	t.Parallel()
	resp, body := send(t, http.MethodGet, "/hello", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200; body %s", resp.Status, body)
	}
	cid := correlationID(t, resp)
	respTrace, respParent := traceresponse(t, resp)

	tr := waitTrace(t, respTrace, 2)
	if tr.id != respTrace {
		t.Errorf("Jaeger trace ID = %s, want traceresponse's %s", tr.id, respTrace)
	}
	sc := tr.serverSpan(t, sidecarService)
	if len(sc.References) != 0 {
		t.Errorf("sidecar span has references %+v, want none (root)\n%s", sc.References, tr)
	}
	if respParent != sc.SpanID {
		t.Errorf("traceresponse parent-id = %s, want the sidecar's span %s", respParent, sc.SpanID)
	}
	wantTag(t, tr, sc, "tracecar.correlation_id", cid)
	app := tr.serverSpan(t, appService)
	if p := app.parent(); p != sc.SpanID {
		t.Errorf("app span's parent = %q, want the sidecar's span %s\n%s", p, sc.SpanID, tr)
	}
	if reply := decodeReply(t, body); reply.CorrelationID != cid || reply.TraceID != respTrace {
		t.Errorf("app received correlation ID %q in trace %s, want %q in %s", reply.CorrelationID, reply.TraceID, cid, respTrace)
	}
}

// TestInvalidTraceparentStartsNewTrace: W3C Trace Context says a traceparent
// that does not parse MUST be ignored, so the sidecar starts a new trace.
func TestInvalidTraceparentStartsNewTrace(t *testing.T) {
	t.Parallel()
	callerTrace, callerSpan := randomHex(t, 16), randomHex(t, 8)
	tests := []struct {
		name, traceparent string
	}{
		{"upper-case hex", "00-" + strings.ToUpper(callerTrace) + "-" + strings.ToUpper(callerSpan) + "-01"},
		{"version ff", "ff-" + callerTrace + "-" + callerSpan + "-01"},
		{"all-zero parent-id", "00-" + callerTrace + "-0000000000000000-01"},
		{"short trace-id", "00-" + callerTrace[:30] + "-" + callerSpan + "-01"},
		{"version 00 with extra field", "00-" + callerTrace + "-" + callerSpan + "-01-extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := send(t, http.MethodGet, "/hello", http.Header{"Traceparent": {tc.traceparent}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s, want 200; body %s", resp.Status, body)
			}
			respTrace, _ := traceresponse(t, resp)
			if respTrace == callerTrace {
				t.Fatalf("traceparent %q was continued (trace %s), want a new trace", tc.traceparent, respTrace)
			}
			tr := waitTrace(t, respTrace, 2)
			sc := tr.serverSpan(t, sidecarService)
			if len(sc.References) != 0 {
				t.Errorf("sidecar span has references %+v, want none (new root)\n%s", sc.References, tr)
			}
			if reply := decodeReply(t, body); !strings.HasPrefix(reply.Traceparent, "00-"+respTrace+"-"+sc.SpanID+"-") {
				t.Errorf("app received traceparent %q, want the new trace %s under span %s", reply.Traceparent, respTrace, sc.SpanID)
			}
		})
	}
	t.Cleanup(func() {
		// The new traces are in Jaeger; nothing was recorded under the caller's ID.
		if _, found, err := getTrace(callerTrace); err != nil || found {
			t.Errorf("Jaeger holds spans in the caller's trace %s (err %v), want none", callerTrace, err)
		}
	})
}

// TestFutureVersionTraceparentIsContinued: W3C Trace Context: a higher version
// is parsed as version 00 where it can be, extra fields ignored.
func TestFutureVersionTraceparentIsContinued(t *testing.T) {
	t.Parallel()
	callerTrace, callerSpan := randomHex(t, 16), randomHex(t, 8)
	resp, body := send(t, http.MethodGet, "/hello", http.Header{
		"Traceparent": {"cc-" + callerTrace + "-" + callerSpan + "-01-what-the-future-will-be-like"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200; body %s", resp.Status, body)
	}
	if respTrace, _ := traceresponse(t, resp); respTrace != callerTrace {
		t.Fatalf("traceresponse trace-id = %s, want the caller's %s", respTrace, callerTrace)
	}
	tr := waitTrace(t, callerTrace, 2)
	if p := tr.serverSpan(t, sidecarService).parent(); p != callerSpan {
		t.Errorf("sidecar span's parent = %q, want the caller's span %s\n%s", p, callerSpan, tr)
	}
}

// TestFailRecordsErrorStatus: a 500 from the app reaches the caller and marks
// the sidecar's span (OTel HTTP semconv: status Error on 5xx for SERVER spans).
func TestFailRecordsErrorStatus(t *testing.T) {
	t.Parallel()
	resp, body := send(t, http.MethodGet, "/fail", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %s, want 500; body %s", resp.Status, body)
	}
	respTrace, _ := traceresponse(t, resp)
	tr := waitTrace(t, respTrace, 2)
	sc := tr.serverSpan(t, sidecarService)
	wantTag(t, tr, sc, "http.response.status_code", "500")
	wantTag(t, tr, sc, "otel.status_code", "ERROR")
	wantTag(t, tr, sc, "error", "true")
	wantTag(t, tr, sc, "tracecar.correlation_id", correlationID(t, resp))
}

// TestCorrelationIDSources: X-Request-ID is honoured when X-Correlation-ID is
// absent; an oversized or malformed ID is replaced, never passed on.
func TestCorrelationIDSources(t *testing.T) {
	t.Parallel()
	requestID := "req-" + randomHex(t, 6)
	tests := []struct {
		name   string
		header http.Header
		want   string // "" means: a freshly minted ID, not the one sent
		sent   string
	}{
		{"X-Request-ID", http.Header{"X-Request-Id": {requestID}}, requestID, requestID},
		{"oversized", http.Header{"X-Correlation-Id": {strings.Repeat("a", 2000)}}, "", strings.Repeat("a", 2000)},
		{"disallowed characters", http.Header{"X-Correlation-Id": {"<script>x</script>"}}, "", "<script>x</script>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := send(t, http.MethodGet, "/hello", tc.header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s, want 200; body %s", resp.Status, body)
			}
			cid := correlationID(t, resp)
			switch {
			case tc.want != "" && cid != tc.want:
				t.Errorf("X-Correlation-ID back = %q, want %q", cid, tc.want)
			case tc.want == "" && cid == tc.sent:
				t.Errorf("invalid correlation ID %q was passed back, want a new one", cid)
			}
			if reply := decodeReply(t, body); reply.CorrelationID != cid {
				t.Errorf("app received X-Correlation-ID %q, want %q", reply.CorrelationID, cid)
			}
			respTrace, _ := traceresponse(t, resp)
			tr := waitTrace(t, respTrace, 2)
			wantTag(t, tr, tr.serverSpan(t, sidecarService), "tracecar.correlation_id", cid)
		})
	}
}
