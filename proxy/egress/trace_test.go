package egress

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy/stitch"
)

const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	inboundTrace = "0af7651916cd43dd8448eb211c80319c"
	inboundSpan  = "b7ad6b7169203331"
)

// recordHeaders is a destination that hands each request's headers to the
// test and answers 200.
func recordHeaders(got chan<- http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = w.Write([]byte("hello"))
	}
}

// checkClientSpan asserts the span is a CLIENT span for GET target, that the
// destination got a traceparent naming it as parent, and returns it.
func checkClientSpan(t *testing.T, r *rig, d *downstream, up http.Header, source string) trace.SpanContext {
	t.Helper()
	span := r.onlySpan()
	sc := span.SpanContext()
	if span.SpanKind() != trace.SpanKindClient || span.Name() != "GET" {
		t.Errorf("span kind/name = %v %q, want client GET", span.SpanKind(), span.Name())
	}
	wantTP := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if tp := up.Get("Traceparent"); tp != wantTP {
		t.Errorf("destination got traceparent %q, want %q (parent = the client span)", tp, wantTP)
	}
	if v := attr(t, span, "tracecar.parent.source").AsString(); v != source {
		t.Errorf("tracecar.parent.source = %q, want %q", v, source)
	}
	host, port, _ := strings.Cut(d.hostPort(), ":")
	for key, want := range map[string]string{
		"http.request.method":       "GET",
		"server.address":            host,
		"server.port":               port,
		"url.full":                  "http://" + d.hostPort() + "/orders/7",
		"http.response.status_code": "200",
		"network.protocol.version":  "1.1",
	} {
		if v := attr(t, span, key).String(); v != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	if span.Status().Code != codes.Unset {
		t.Errorf("status = %v, want unset for 200", span.Status())
	}
	return sc
}

func TestPropagatedTraceparentParentsClientSpan(t *testing.T) {
	got := make(chan http.Header, 1)
	d := newDownstream(t, recordHeaders(got))
	r := newRig(t)
	resp, body := r.get(d.URL+"/orders/7?token=secret", map[string]string{
		"Traceparent":         "00-" + callerTrace + "-" + callerSpan + "-01",
		"Tracestate":          "vendor=abc",
		"Baggage":             "user=alice,  tier=gold",
		"X-Correlation-ID":    "order-flow-42",
		"Proxy-Authorization": "Basic c2VjcmV0OnNlY3JldA==",
		"Connection":          "X-Hop",
		"X-Hop":               "must-not-travel",
	})
	if resp.StatusCode != http.StatusOK || body != "hello" {
		t.Fatalf("got %d %q, want 200 hello", resp.StatusCode, body)
	}
	up := <-got
	sc := checkClientSpan(t, r, d, up, "propagated")
	span := r.onlySpan()
	if sc.TraceID().String() != callerTrace {
		t.Errorf("trace id = %s, want the app's %s", sc.TraceID(), callerTrace)
	}
	if p := span.Parent(); p.SpanID().String() != callerSpan || !p.IsRemote() {
		t.Errorf("parent = %s remote=%v, want the app's span %s", p.SpanID(), p.IsRemote(), callerSpan)
	}
	if ts := up.Get("Tracestate"); ts != "vendor=abc" {
		t.Errorf("destination got tracestate %q, want vendor=abc", ts)
	}
	if b := up.Get("Baggage"); b != "user=alice,  tier=gold" {
		t.Errorf("destination got baggage %q, want it byte for byte", b)
	}
	if c := up.Values("X-Correlation-Id"); len(c) != 1 || c[0] != "order-flow-42" {
		t.Errorf("destination got correlation %q, want the app's", c)
	}
	if v := attr(t, span, "tracecar.correlation_id").AsString(); v != "order-flow-42" {
		t.Errorf("span correlation = %q", v)
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Hop"} {
		if v, ok := up[h]; ok {
			t.Errorf("hop-by-hop %s reached the destination: %q", h, v)
		}
	}
	if strings.Contains(attr(t, span, "url.full").AsString(), "secret") {
		t.Error("url.full carries the query string")
	}
	log := r.log()
	for _, want := range []string{`"trace_id":"` + callerTrace, `"correlation_id":"order-flow-42"`, `"span_id":"` + sc.SpanID().String(), `"parent_source":"propagated"`} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %s: %s", want, log)
		}
	}
	if strings.Contains(log, "secret") {
		t.Errorf("access log carries the query string: %s", log)
	}
}

func TestCorrelationIDStitchesUnderInboundSpan(t *testing.T) {
	for _, header := range []string{"X-Correlation-ID", "X-Request-ID"} {
		t.Run(header, func(t *testing.T) {
			got := make(chan http.Header, 1)
			d := newDownstream(t, recordHeaders(got))
			r := newRig(t)
			inbound := knownSpan(t, inboundTrace, inboundSpan)
			end := r.stitch.Begin(stitch.Entry{SpanContext: inbound, CorrelationID: "order-42"})
			defer end()
			r.get(d.URL+"/orders/7", map[string]string{header: "order-42"})
			up := <-got
			sc := checkClientSpan(t, r, d, up, "correlation_id")
			span := r.onlySpan()
			if sc.TraceID() != inbound.TraceID() || span.Parent().SpanID() != inbound.SpanID() {
				t.Errorf("span %s/%s parent %s, want trace %s under the inbound span %s",
					sc.TraceID(), sc.SpanID(), span.Parent().SpanID(), inbound.TraceID(), inbound.SpanID())
			}
			if v := up.Get(header); v != "order-42" {
				t.Errorf("destination got %s %q, want order-42", header, v)
			}
			if v := attr(t, span, "tracecar.correlation_id").AsString(); v != "order-42" {
				t.Errorf("span correlation = %q", v)
			}
		})
	}
}

func TestSerialInference(t *testing.T) {
	got := make(chan http.Header, 1)
	d := newDownstream(t, recordHeaders(got))
	r := newRig(t, func(s *Settings) { s.SerialInference = true })
	inbound := knownSpan(t, inboundTrace, inboundSpan)
	end := r.stitch.Begin(stitch.Entry{SpanContext: inbound, CorrelationID: "only-one"})
	defer end()
	r.get(d.URL+"/orders/7", nil)
	up := <-got
	sc := checkClientSpan(t, r, d, up, "inferred")
	if span := r.onlySpan(); sc.TraceID() != inbound.TraceID() || span.Parent().SpanID() != inbound.SpanID() {
		t.Errorf("parent %s in trace %s, want the inbound span %s", span.Parent().SpanID(), sc.TraceID(), inbound.SpanID())
	}
	if c := up.Values("X-Correlation-Id"); len(c) != 1 || c[0] != "only-one" {
		t.Errorf("destination got correlation %q, want the inbound request's only-one", c)
	}
}

func TestNoParent(t *testing.T) {
	inbound := knownSpan(t, inboundTrace, inboundSpan)
	for _, tc := range []struct {
		name      string
		inference bool
		inFlight  int
		hdr       map[string]string
	}{
		{"nothing known", false, 0, nil},
		{"inference off", false, 1, nil},
		{"two in flight", true, 2, nil},
		{"unknown correlation ID", false, 1, map[string]string{"X-Correlation-ID": "who-knows"}},
		{"invalid traceparent", false, 0, map[string]string{"Traceparent": "00-" + callerTrace + "-0000000000000000-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan http.Header, 1)
			d := newDownstream(t, recordHeaders(got))
			r := newRig(t, func(s *Settings) { s.SerialInference = tc.inference })
			for range tc.inFlight {
				defer r.stitch.Begin(stitch.Entry{SpanContext: inbound, CorrelationID: "in-flight"})()
			}
			r.get(d.URL+"/orders/7", tc.hdr)
			up := <-got
			sc := checkClientSpan(t, r, d, up, "none")
			span := r.onlySpan()
			if span.Parent().IsValid() || sc.TraceID() == inbound.TraceID() || sc.TraceID().String() == callerTrace {
				t.Errorf("span has parent %v in trace %s, want a new root", span.Parent().SpanID(), sc.TraceID())
			}
			if tc.hdr == nil && up.Get("X-Correlation-Id") != "" {
				t.Errorf("destination got correlation %q, want none", up.Get("X-Correlation-Id"))
			}
			if v := tc.hdr["X-Correlation-ID"]; v != "" && up.Get("X-Correlation-Id") != v {
				t.Errorf("destination got correlation %q, want the app's %q", up.Get("X-Correlation-Id"), v)
			}
		})
	}
}

func TestErrorStatusMarksClientSpan(t *testing.T) {
	// HTTP client span conventions: 4xx SHOULD and 5xx MUST be Error on a
	// CLIENT span, with error.type the status code.
	for _, status := range []int{404, 500} {
		d := newDownstream(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) })
		r := newRig(t)
		resp, _ := r.get(d.URL+"/x", nil)
		if resp.StatusCode != status {
			t.Fatalf("status %d, want %d", resp.StatusCode, status)
		}
		span := r.onlySpan()
		if span.Status().Code != codes.Error || attr(t, span, "error.type").AsString() != statusText(status) {
			t.Errorf("%d: span status %v error.type %v, want Error and %d", status, span.Status(), attr(t, span, "error.type").String(), status)
		}
	}
}

func TestNotAProxyRequest(t *testing.T) {
	r := newRig(t)
	resp, err := http.Get(r.front.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("origin-form request got %d, want 400", resp.StatusCode)
	}
	if p := problem(t, resp, body); !strings.Contains(p.Detail, "not a proxy request") {
		t.Errorf("detail %q", p.Detail)
	}
	if n := len(r.spans.Ended()); n != 0 {
		t.Errorf("%d spans for a refused request", n)
	}
}

func TestPropagatedTraceGetsTheInboundCorrelationID(t *testing.T) {
	got := make(chan http.Header, 1)
	d := newDownstream(t, recordHeaders(got))
	r := newRig(t)
	// The app forwards its own span (of the inbound request's trace) but
	// not the correlation ID: the inbound request of that trace supplies it.
	inbound := knownSpan(t, callerTrace, inboundSpan)
	defer r.stitch.Begin(stitch.Entry{SpanContext: inbound, CorrelationID: "order-flow-7"})()
	r.get(d.URL+"/", map[string]string{"Traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
	up := <-got
	span := r.onlySpan()
	if v := attr(t, span, "tracecar.parent.source").AsString(); v != "propagated" {
		t.Errorf("parent source %q", v)
	}
	if c := up.Get("X-Correlation-Id"); c != "order-flow-7" {
		t.Errorf("destination got correlation %q, want the inbound request's", c)
	}
	if v := attr(t, span, "tracecar.correlation_id").AsString(); v != "order-flow-7" {
		t.Errorf("span correlation = %q", v)
	}
}
