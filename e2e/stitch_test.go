package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The stitching tests run one after another, never in parallel: serial
// inference needs exactly one inbound request in flight at the sidecar.

// chainReply is the JSON of the demo app's /chain.
type chainReply struct {
	appReply
	To               string          `json:"to"`
	Forward          string          `json:"forward"`
	DownstreamStatus int             `json:"downstream_status"`
	Downstream       json.RawMessage `json:"downstream"`
	Error            string          `json:"error"`
}

func decodeChain(t *testing.T, body []byte) chainReply {
	t.Helper()
	var r chainReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/chain reply %q: %v", body, err)
	}
	return r
}

// downstreamReply is what the downstream demo app answered /chain's call with.
func (r chainReply) downstreamReply(t *testing.T) appReply {
	t.Helper()
	var d appReply
	if err := json.Unmarshal(r.Downstream, &d); err != nil {
		t.Fatalf("downstream reply %q: %v", r.Downstream, err)
	}
	return d
}

// chainPath is the path of a /chain request to the downstream's /hello.
func chainPath(forward string) string {
	return "/chain?to=" + url.QueryEscape(downstreamURL+"/hello") + "&forward=" + forward
}

var traceparentRE = traceresponseRE // same shape: 00-<trace-id>-<parent-id>-<flags>

// spansOf returns the spans of service with the given span.kind.
func (tr jaegerTrace) spansOf(service, kind string) []jaegerSpan {
	var found []jaegerSpan
	for _, s := range tr.spans {
		if k, _ := s.tag("span.kind"); s.service == service && k == kind {
			found = append(found, s)
		}
	}
	return found
}

// clientSpan returns the one CLIENT span of service, failing the test when
// there is not exactly one.
func (tr jaegerTrace) clientSpan(t *testing.T, service string) jaegerSpan {
	t.Helper()
	found := tr.spansOf(service, "client")
	if len(found) != 1 {
		t.Fatalf("trace %s has %d client spans of %s, want 1:\n%s", tr.id, len(found), service, tr)
	}
	return found[0]
}

// waitSpans polls Jaeger until trace id has, for each "service/kind" in want,
// at least one span.
func waitSpans(t *testing.T, id string, want ...string) jaegerTrace {
	t.Helper()
	var tr jaegerTrace
	err := poll(traceDeadline, func() (bool, error) {
		got, found, err := getTrace(id)
		if err != nil || !found {
			return false, fmt.Errorf("trace %s not in Jaeger (err: %v)", id, err)
		}
		tr = got
		for _, w := range want {
			service, kind, _ := strings.Cut(w, "/")
			if len(tr.spansOf(service, kind)) == 0 {
				return false, fmt.Errorf("trace %s has no %s span of %s yet:\n%s", id, kind, service, tr)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// waitInboundIdle polls the main sidecar until it has exactly want inbound
// requests in flight.
func waitInboundIdle(t *testing.T, want float64) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	err := poll(traceDeadline, func() (bool, error) {
		m, err := scrape(client, adminURL)
		if err != nil {
			return false, err
		}
		v, ok := m.get("tracecar_http_requests_in_flight")
		if !ok || v != want {
			return false, fmt.Errorf("tracecar_http_requests_in_flight = %v (present %v), want %v", v, ok, want)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStitching: caller → sidecar (inbound) → app → sidecar (egress) →
// downstream, where the app forwards only the correlation ID, only its own
// traceparent, or nothing. Jaeger shows one trace, the caller's, with the
// sidecar's CLIENT span under the right parent and the downstream's span
// under the CLIENT span; tracecar.parent.source says how the parent was found.
func TestStitching(t *testing.T) {
	tests := []struct {
		forward string
		source  string // tracecar.parent.source of the CLIENT span
		// underApp: the CLIENT span's parent is the app's server span (the
		// app forwarded its own context), else the sidecar's SERVER span.
		underApp bool
		// withCID: the CLIENT span carries the caller's correlation ID and
		// the downstream receives it.
		withCID bool
	}{
		{forward: "correlation", source: "correlation_id", withCID: true},
		// The app forwards its own span but not the correlation ID: the
		// sidecar finds the inbound request of that trace and adds it.
		{forward: "traceparent", source: "propagated", underApp: true, withCID: true},
		// Serial inference also gives the call the inbound request's
		// correlation ID, which the app did not forward.
		{forward: "none", source: "inferred", withCID: true},
	}
	for _, tc := range tests {
		t.Run("forward="+tc.forward, func(t *testing.T) {
			waitInboundIdle(t, 0) // inference needs this request to be the only one
			callerTrace, callerSpan := randomHex(t, 16), randomHex(t, 8)
			cid := "e2e-chain-" + tc.forward + "-" + randomHex(t, 4)
			resp, body := send(t, http.MethodGet, chainPath(tc.forward), http.Header{
				"Traceparent":      {"00-" + callerTrace + "-" + callerSpan + "-01"},
				"X-Correlation-Id": {cid},
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s, want 200; body %s", resp.Status, body)
			}
			reply := decodeChain(t, body)
			if reply.DownstreamStatus != http.StatusOK {
				t.Fatalf("downstream status %d, want 200; body %s", reply.DownstreamStatus, body)
			}
			down := reply.downstreamReply(t)

			tr := waitSpans(t, callerTrace, sidecarService+"/server", appService+"/server",
				sidecarService+"/client", downstreamService+"/server")
			sc := tr.serverSpan(t, sidecarService)
			if p := sc.parent(); p != callerSpan {
				t.Errorf("sidecar SERVER span's parent = %q, want the caller's span %s\n%s", p, callerSpan, tr)
			}
			app := tr.serverSpan(t, appService)
			if p := app.parent(); p != sc.SpanID {
				t.Errorf("app span's parent = %q, want the sidecar SERVER span %s\n%s", p, sc.SpanID, tr)
			}
			if app.SpanID != reply.SpanID {
				t.Errorf("app's server span in Jaeger is %s, the app says %s", app.SpanID, reply.SpanID)
			}

			cl := tr.clientSpan(t, sidecarService)
			if cl.OperationName != "GET" {
				t.Errorf("CLIENT span name = %q, want GET", cl.OperationName)
			}
			wantTag(t, tr, cl, "tracecar.parent.source", tc.source)
			wantParent, parentName := sc.SpanID, "the sidecar SERVER span"
			if tc.underApp {
				wantParent, parentName = app.SpanID, "the app's /chain span"
			}
			if p := cl.parent(); p != wantParent {
				t.Errorf("CLIENT span's parent = %q, want %s %s\n%s", p, parentName, wantParent, tr)
			}
			wantTag(t, tr, cl, "url.full", downstreamURL+"/hello")
			wantTag(t, tr, cl, "http.response.status_code", "200")

			ds := tr.serverSpan(t, downstreamService)
			if p := ds.parent(); p != cl.SpanID {
				t.Errorf("downstream span's parent = %q, want the CLIENT span %s\n%s", p, cl.SpanID, tr)
			}
			// The traceparent the downstream received names the CLIENT span.
			if want := "00-" + callerTrace + "-" + cl.SpanID + "-01"; down.Traceparent != want {
				t.Errorf("downstream received traceparent %q, want %q", down.Traceparent, want)
			}

			gotCID, hasCID := cl.tag("tracecar.correlation_id")
			switch {
			case tc.withCID && (gotCID != cid || down.CorrelationID != cid):
				t.Errorf("CLIENT span tracecar.correlation_id = %q (present %v), downstream received X-Correlation-ID %q; want both %q",
					gotCID, hasCID, down.CorrelationID, cid)
			case !tc.withCID && (hasCID || down.CorrelationID != ""):
				t.Errorf("CLIENT span tracecar.correlation_id = %q (present %v), downstream received X-Correlation-ID %q; want none: the app forwarded only its traceparent",
					gotCID, hasCID, down.CorrelationID)
			}
		})
	}
}

// TestNoStitchingWithoutEvidence: with no trace context, no correlation ID and
// two inbound requests in flight, serial inference cannot pick one: the
// CLIENT span starts a trace of its own (tracecar.parent.source "none").
func TestNoStitchingWithoutEvidence(t *testing.T) {
	waitInboundIdle(t, 0)
	// A second inbound request, held open at the app's /hang.
	ctx, cancel := context.WithCancel(context.Background())
	hung := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, sidecarURL+"/hang", nil)
		if err != nil {
			hung <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			err = fmt.Errorf("/hang answered %s, want no answer until the client gives up", resp.Status)
		}
		hung <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-hung; !errors.Is(err, context.Canceled) {
			t.Errorf("/hang: %v", err)
		}
		waitInboundIdle(t, 0) // leave the sidecar idle for the next test
	})
	waitInboundIdle(t, 1)

	callerTrace := randomHex(t, 16)
	resp, body := send(t, http.MethodGet, chainPath("none"), http.Header{
		"Traceparent":      {"00-" + callerTrace + "-" + randomHex(t, 8) + "-01"},
		"X-Correlation-Id": {"e2e-chain-ambiguous-" + randomHex(t, 4)},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want 200; body %s", resp.Status, body)
	}
	down := decodeChain(t, body).downstreamReply(t)
	m := traceparentRE.FindStringSubmatch(down.Traceparent)
	if m == nil {
		t.Fatalf("downstream received traceparent %q, want a valid one", down.Traceparent)
	}
	newTrace, clientID := m[1], m[2]
	if newTrace == callerTrace {
		t.Fatalf("the call joined the caller's trace %s, want a trace of its own", callerTrace)
	}
	if down.CorrelationID != "" {
		t.Errorf("downstream received X-Correlation-ID %q, want none (nothing to take it from)", down.CorrelationID)
	}

	tr := waitSpans(t, newTrace, sidecarService+"/client", downstreamService+"/server")
	cl := tr.clientSpan(t, sidecarService)
	if cl.SpanID != clientID || len(cl.References) != 0 {
		t.Errorf("CLIENT span %s with references %+v, want span %s as the trace's root\n%s", cl.SpanID, cl.References, clientID, tr)
	}
	wantTag(t, tr, cl, "tracecar.parent.source", "none")
	if p := tr.serverSpan(t, downstreamService).parent(); p != cl.SpanID {
		t.Errorf("downstream span's parent = %q, want the CLIENT span %s\n%s", p, cl.SpanID, tr)
	}
}

// TestChainRejectsBadTarget: /chain checks its parameters before calling out.
func TestChainRejectsBadTarget(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/chain", "/chain?to=relative/path", "/chain?to=ftp://x/", chainPath("everything")} {
		resp, body := send(t, http.MethodGet, path, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %s, want 400; body %s", path, resp.Status, body)
		}
		if r := decodeChain(t, body); r.Error == "" || r.DownstreamStatus != 0 {
			t.Errorf("GET %s: reply %s, want an error and no downstream call", path, body)
		}
	}
}
