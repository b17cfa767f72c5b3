package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/propagation"
)

// recordHeaders is an app that hands each request's headers to the test.
func recordHeaders(got chan<- http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("X-Correlation-ID", "app-must-not-win")
		_, _ = w.Write([]byte("hello"))
	})
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

func TestValidTraceparentIsContinuedAndAppIsParentedBySidecarSpan(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	resp := r.get("/orders/7?x=1", map[string]string{
		"Traceparent":      "00-" + callerTrace + "-" + callerSpan + "-01",
		"Tracestate":       "vendor=abc",
		"Baggage":          "user=alice,  tier=gold",
		"X-Correlation-ID": "order-flow-42",
	})
	up := <-got
	span := r.onlySpan()
	sc := span.SpanContext()

	if span.SpanKind() != trace.SpanKindServer || span.Name() != "GET" {
		t.Errorf("span kind/name = %v %q, want server GET", span.SpanKind(), span.Name())
	}
	if sc.TraceID().String() != callerTrace {
		t.Errorf("trace id = %s, want the caller's %s", sc.TraceID(), callerTrace)
	}
	if p := span.Parent(); p.SpanID().String() != callerSpan || !p.IsRemote() {
		t.Errorf("parent = %s remote=%v, want the caller's span %s", p.SpanID(), p.IsRemote(), callerSpan)
	}
	wantTP := "00-" + callerTrace + "-" + sc.SpanID().String() + "-01"
	if tp := up.Get("Traceparent"); tp != wantTP {
		t.Errorf("app got traceparent %q, want %q (parent = the sidecar's span)", tp, wantTP)
	}
	if ts := up.Get("Tracestate"); ts != "vendor=abc" {
		t.Errorf("app got tracestate %q, want vendor=abc", ts)
	}
	if b := up.Get("Baggage"); b != "user=alice,  tier=gold" {
		t.Errorf("app got baggage %q, want it byte for byte", b)
	}
	if c := up.Values("X-Correlation-Id"); len(c) != 1 || c[0] != "order-flow-42" {
		t.Errorf("app got correlation %q, want the caller's", c)
	}
	if c := resp.Header.Values("X-Correlation-Id"); len(c) != 1 || c[0] != "order-flow-42" {
		t.Errorf("caller got correlation %q, want exactly the caller's", c)
	}
	if tr := resp.Header.Get("Traceresponse"); tr != wantTP {
		t.Errorf("traceresponse = %q, want %q", tr, wantTP)
	}
	if v := attr(t, span, "tracecar.correlation_id").AsString(); v != "order-flow-42" {
		t.Errorf("span correlation attribute = %q", v)
	}
	for key, want := range map[string]string{
		"http.request.method": "GET", "url.path": "/orders/7", "url.scheme": "http",
		"network.protocol.version": "1.1", "client.address": "127.0.0.1", "server.address": "127.0.0.1",
	} {
		if v := attr(t, span, key).String(); v != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	if v := attr(t, span, "http.response.status_code").AsInt64(); v != 200 {
		t.Errorf("status attribute = %d", v)
	}
	if v := attr(t, span, "http.response.body.size").AsInt64(); v != 5 {
		t.Errorf("body size attribute = %d, want 5", v)
	}
	if !strings.HasPrefix(attr(t, span, "user_agent.original").AsString(), "Go-http-client") {
		t.Error("user agent not recorded")
	}
}

func TestNoTraceparentStartsTraceAndMintsCorrelationFromTraceID(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	resp := r.get("/", nil)
	up := <-got
	span := r.onlySpan()
	sc := span.SpanContext()
	if span.Parent().IsValid() {
		t.Errorf("span has parent %v, want a root span", span.Parent())
	}
	cid := resp.Header.Get("X-Correlation-Id")
	if cid != sc.TraceID().String() {
		t.Errorf("minted correlation %q, want the trace ID %s", cid, sc.TraceID())
	}
	if up.Get("X-Correlation-Id") != cid {
		t.Errorf("app got correlation %q, caller got %q", up.Get("X-Correlation-Id"), cid)
	}
	if tr := resp.Header.Get("Traceresponse"); tr != "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01" {
		t.Errorf("traceresponse %q does not name the new trace and span", tr)
	}
}

func TestInvalidTraceparentStartsNewTraceAndDropsTracestate(t *testing.T) {
	for name, tp := range map[string]string{
		"uppercase hex":   "00-" + strings.ToUpper(callerTrace) + "-" + callerSpan + "-01",
		"version ff":      "ff-" + callerTrace + "-" + callerSpan + "-01",
		"zero trace id":   "00-00000000000000000000000000000000-" + callerSpan + "-01",
		"short parent":    "00-" + callerTrace + "-00f067aa0ba902-01",
		"version 00 tail": "00-" + callerTrace + "-" + callerSpan + "-01-extra",
	} {
		t.Run(name, func(t *testing.T) {
			got := make(chan http.Header, 1)
			r := newRig(t, recordHeaders(got))
			r.get("/", map[string]string{"Traceparent": tp, "Tracestate": "vendor=abc"})
			up := <-got
			span := r.onlySpan()
			if span.SpanContext().TraceID().String() == callerTrace || span.Parent().IsValid() {
				t.Errorf("invalid traceparent was continued: trace %s parent %v", span.SpanContext().TraceID(), span.Parent())
			}
			if ts := up.Values("Tracestate"); len(ts) != 0 {
				t.Errorf("tracestate %q travelled with an invalid traceparent", ts)
			}
			if !strings.Contains(up.Get("Traceparent"), span.SpanContext().TraceID().String()) {
				t.Errorf("app traceparent %q is not the new trace", up.Get("Traceparent"))
			}
		})
	}
}

func TestDuplicateTraceparentHeadersStartNewTrace(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.front.URL, nil)
	req.Header.Add("Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	req.Header.Add("Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	resp, err := r.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	<-got
	if span := r.onlySpan(); span.SpanContext().TraceID().String() == callerTrace {
		t.Error("a duplicated traceparent was continued; W3C Trace Context treats it as invalid")
	}
}

func TestCorrelationID(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name      string
		hdr       map[string]string
		want      string // "" = minted from the trace ID
		wantReqID string // what the app sees in X-Request-ID ("" = absent)
	}{
		{"correlation header honoured", map[string]string{"X-Correlation-ID": "abc-123"}, "abc-123", ""},
		{"x-request-id honoured when alone", map[string]string{"X-Request-ID": "req-9"}, "req-9", "req-9"},
		{"correlation header wins over x-request-id", map[string]string{"X-Correlation-ID": "c1", "X-Request-ID": "r1"}, "c1", "r1"},
		{"oversized replaced", map[string]string{"X-Correlation-ID": long}, "", ""},
		{"invalid characters replaced", map[string]string{"X-Correlation-ID": "a b\"c"}, "", ""},
		{"invalid x-request-id replaced too", map[string]string{"X-Request-ID": "bad id"}, "", "minted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan http.Header, 1)
			r := newRig(t, recordHeaders(got))
			resp := r.get("/", c.hdr)
			up := <-got
			span := r.onlySpan()
			want := c.want
			if want == "" {
				want = span.SpanContext().TraceID().String()
			}
			if g := resp.Header.Get("X-Correlation-Id"); g != want {
				t.Errorf("caller got %q, want %q", g, want)
			}
			if g := up.Get("X-Correlation-Id"); g != want {
				t.Errorf("app got %q, want %q", g, want)
			}
			if g := attr(t, span, "tracecar.correlation_id").AsString(); g != want {
				t.Errorf("span has %q, want %q", g, want)
			}
			wantReq := c.wantReqID
			if wantReq == "minted" {
				wantReq = want
			}
			if g := up.Get("X-Request-Id"); g != wantReq {
				t.Errorf("app got X-Request-ID %q, want %q", g, wantReq)
			}
			if !strings.Contains(r.log(), `"correlation_id":"`+want+`"`) {
				t.Errorf("access log lacks correlation_id %q:\n%s", want, r.log())
			}
		})
	}
}

func TestCustomCorrelationHeader(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got), func(s *Settings) {
		s.Correlation = propagation.NewCorrelation("X-Trace-Tag", 0)
	})
	resp := r.get("/", map[string]string{"X-Trace-Tag": "tag-1"})
	up := <-got
	if resp.Header.Get("X-Trace-Tag") != "tag-1" || up.Get("X-Trace-Tag") != "tag-1" {
		t.Errorf("custom header not honoured: caller %q app %q", resp.Header.Get("X-Trace-Tag"), up.Get("X-Trace-Tag"))
	}
}

func TestEdgeModeStartsNewTraceLinkedToCaller(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got), func(s *Settings) { s.Edge = true })
	r.get("/", map[string]string{"Traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
	<-got
	span := r.onlySpan()
	if span.SpanContext().TraceID().String() == callerTrace || span.Parent().IsValid() {
		t.Fatalf("edge mode continued the caller's trace")
	}
	links := span.Links()
	if len(links) != 1 || links[0].SpanContext.TraceID().String() != callerTrace ||
		links[0].SpanContext.SpanID().String() != callerSpan {
		t.Errorf("links = %+v, want one link to the caller's span", links)
	}
}

func TestAccessLogLine(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	r.get("/path", map[string]string{"X-Correlation-ID": "log-1"})
	<-got
	span := r.onlySpan()
	line := r.log()
	for _, want := range []string{
		`"msg":"request"`, `"method":"GET"`, `"path":"/path"`, `"status":200`, `"bytes":5`,
		`"trace_id":"` + span.SpanContext().TraceID().String() + `"`,
		`"span_id":"` + span.SpanContext().SpanID().String() + `"`,
		`"correlation_id":"log-1"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("access log lacks %s:\n%s", want, line)
		}
	}
}

func TestTracingDisabledPassesCallerContextThrough(t *testing.T) {
	got := make(chan http.Header, 1)
	app := httptest.NewServer(recordHeaders(got))
	defer app.Close()
	u, _ := url.Parse(app.URL)
	h, err := New(Settings{Upstream: u}, Deps{}) // no tracer provider: no-op tracing
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	defer front.Close()
	tp := "00-" + callerTrace + "-" + callerSpan + "-01"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, front.URL, nil)
	req.Header.Set("Traceparent", tp)
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	up := <-got
	if up.Get("Traceparent") != tp {
		t.Errorf("app got traceparent %q, want the caller's %q unchanged", up.Get("Traceparent"), tp)
	}
	if tr := resp.Header.Get("Traceresponse"); tr != "" {
		t.Errorf("traceresponse %q names a span that was never recorded", tr)
	}
	if cid := resp.Header.Get("X-Correlation-Id"); cid != callerTrace || up.Get("X-Correlation-Id") != cid {
		t.Errorf("correlation caller %q app %q, want both the trace ID", cid, up.Get("X-Correlation-Id"))
	}
}
