package httpproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"

	"github.com/tracecar/tracecar/proxy"
)

func TestHopByHopHeadersAreNotForwarded(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got <- req.Header.Clone()
		w.Header().Set("Connection", "X-App-Hop")
		w.Header().Set("X-App-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App-End", "kept")
	}))
	resp := r.get("/", map[string]string{
		"Connection":   "X-Client-Hop",
		"X-Client-Hop": "1",
		"Keep-Alive":   "timeout=9",
		"Te":           "trailers",
		"X-End":        "kept",
	})
	up := <-got
	// RFC 9110 §7.6.1: a proxy MUST remove the fields the Connection header
	// lists and the hop-by-hop fields themselves before forwarding.
	for _, h := range []string{"X-Client-Hop", "Keep-Alive"} {
		if v := up.Get(h); v != "" {
			t.Errorf("app received hop-by-hop %s: %q", h, v)
		}
	}
	if up.Get("Te") != "trailers" {
		t.Errorf("TE: trailers must pass (gRPC needs it), app got %q", up.Get("Te"))
	}
	if up.Get("X-End") != "kept" {
		t.Error("end-to-end header lost")
	}
	for _, h := range []string{"X-App-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("caller received hop-by-hop %s: %q", h, v)
		}
	}
	if resp.Header.Get("X-App-End") != "kept" {
		t.Error("end-to-end response header lost")
	}
}

func TestXForwardedHeadersPassUnchanged(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	r.get("/", map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
	up := <-got
	if v := up.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "203.0.113.9" {
		t.Errorf("X-Forwarded-For = %q, want the client's value unchanged", v)
	}
	if up.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q", up.Get("X-Forwarded-Proto"))
	}
}

func TestTrailersPass(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "c0ffee")
	}))
	resp := r.get("/", nil)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "body" || resp.Trailer.Get("X-Checksum") != "c0ffee" {
		t.Errorf("body %q trailer %q, want body and c0ffee", body, resp.Trailer.Get("X-Checksum"))
	}
}

func TestLargeBodiesStreamIntact(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, req.Body)
		w.Header().Set("X-Sum", string(h.Sum(nil)[:8]))
		// Echo the body size back as a stream of the same size.
		_, _ = io.CopyN(w, zeroReader{}, n)
	}))
	const size = 8 << 20
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.front.URL, io.LimitReader(zeroReader{}, size))
	resp, err := r.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("response body %d bytes (err %v), want %d", n, err, size)
	}
	want := sha256.Sum256(make([]byte, size))
	if resp.Header.Get("X-Sum") != string(want[:8]) {
		t.Error("request body arrived altered")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestSSEFirstEventArrivesBeforeUpstreamFinishes(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release // the app is still writing
		_, _ = io.WriteString(w, "data: second\n\n")
	}))
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	resp := r.get("/events", nil)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event = %q, %v; want it while the app still holds the stream", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("second event missing: %q", rest)
	}
}

func TestWebSocketEchoThroughProxy(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(req.Context())
			if err != nil {
				return
			}
			if err := c.Write(req.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(r.front.URL)
	u.Scheme = "ws"
	c, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"X-Correlation-Id": {"ws-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Correlation-Id") != "ws-1" {
		t.Errorf("handshake status %d correlation %q", resp.StatusCode, resp.Header.Get("X-Correlation-Id"))
	}
	c.SetReadLimit(1 << 20)
	msgs := []string{"one", "two", strings.Repeat("x", 70000)}
	var sent int64
	for _, m := range msgs {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, echo, err := c.Read(ctx)
		if err != nil || string(echo) != m {
			t.Fatalf("echo of %d bytes: got %d bytes, %v", len(m), len(echo), err)
		}
		sent += int64(len(m))
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	span := r.onlySpan()
	if v := attr(t, span, "http.response.status_code").AsInt64(); v != 101 {
		t.Errorf("status = %d, want 101", v)
	}
	if v := attr(t, span, "tracecar.websocket.client.messages").AsInt64(); v != 3 {
		t.Errorf("client messages = %d, want 3", v)
	}
	if v := attr(t, span, "tracecar.websocket.server.messages").AsInt64(); v != 3 {
		t.Errorf("server messages = %d, want 3", v)
	}
	if v := attr(t, span, "tracecar.websocket.client.bytes").AsInt64(); v <= sent {
		t.Errorf("client bytes = %d, want more than the %d payload bytes (frame headers)", v, sent)
	}
	if v := attr(t, span, "tracecar.websocket.close_code").AsInt64(); v != 1000 {
		t.Errorf("close code = %d, want 1000", v)
	}
	if v := attr(t, span, "tracecar.websocket.closed_by").AsString(); v != "client" {
		t.Errorf("closed by %q, want client", v)
	}
}

func readProblem(t *testing.T, resp *http.Response) proxy.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != proxy.ContentTypeProblem {
		t.Errorf("content type %q, want %s", ct, proxy.ContentTypeProblem)
	}
	var p proxy.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnreachableUpstreamIs502AndProxyKeepsServing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	r := newRig(t, http.NotFoundHandler(), func(s *Settings) { s.Upstream, _ = url.Parse(dead) })
	for i := range 2 {
		resp := r.get("/", map[string]string{"X-Correlation-ID": "dead-1"})
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502", i, resp.StatusCode)
		}
		p := readProblem(t, resp)
		if p.Status != 502 || p.Upstream != dead || !strings.Contains(p.Detail, "upstream unreachable") ||
			!strings.Contains(p.Detail, "connection refused") || p.CorrelationID != "dead-1" {
			t.Errorf("problem = %+v", p)
		}
		if resp.Header.Get("X-Correlation-Id") != "dead-1" || resp.Header.Get("Traceresponse") == "" {
			t.Error("error response lacks correlation ID or traceresponse")
		}
	}
	span := r.waitSpans(2)[0]
	if span.Status().Code != codes.Error || attr(t, span, "error.type").AsString() != "upstream_unreachable" {
		t.Errorf("span status %v error.type %v", span.Status(), attr(t, span, "error.type").AsString())
	}
	if v := testutil.ToFloat64(r.handler.metrics.requests[0][4]); v != 2 {
		t.Errorf("GET 5xx counter = %v, want 2", v)
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }),
		func(s *Settings) { s.ResponseHeaderTimeout = 100 * time.Millisecond })
	defer close(release)
	resp := r.get("/slow", nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	p := readProblem(t, resp)
	if p.Upstream != r.upstream.URL || !strings.Contains(p.Detail, "upstream timed out") {
		t.Errorf("problem = %+v", p)
	}
	if v := attr(t, r.onlySpan(), "error.type").AsString(); v != "upstream_timeout" {
		t.Errorf("error.type = %q", v)
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	calls := make(chan struct{}, 4)
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		calls <- struct{}{}
		_, err := io.Copy(io.Discard, req.Body)
		if err != nil {
			return
		}
	}), func(s *Settings) { s.MaxBodyBytes = 16 })

	// Declared length over the limit: refused before the app sees anything.
	resp, err := r.front.Client().Post(r.front.URL, "text/plain", strings.NewReader(strings.Repeat("a", 100)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	if p := readProblem(t, resp); !strings.Contains(p.Detail, "limit is 16 bytes") {
		t.Errorf("problem detail %q", p.Detail)
	}
	if len(calls) != 0 {
		t.Error("the app was called for a body declared over the limit")
	}

	// Within the limit: passes.
	resp2, err := r.front.Client().Post(r.front.URL, "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Errorf("small body status %d", resp2.StatusCode)
	}
}

func TestH2CPriorKnowledgeOnSamePort(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newRig(t, recordHeaders(got))
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(r.front.URL + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	<-got
	if resp.ProtoMajor != 2 || string(body) != "hello" {
		t.Errorf("proto %s body %q, want HTTP/2.0 hello", resp.Proto, body)
	}
	if v := attr(t, r.onlySpan(), "network.protocol.version").AsString(); v != "2" {
		t.Errorf("network.protocol.version = %q, want 2", v)
	}
}

func TestUnknownMethodIsBounded(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req, _ := http.NewRequestWithContext(t.Context(), "PURGE", r.front.URL, nil)
	resp, err := r.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	span := r.onlySpan()
	if span.Name() != "HTTP" || attr(t, span, "http.request.method").AsString() != "_OTHER" ||
		attr(t, span, "http.request.method_original").AsString() != "PURGE" {
		t.Errorf("span %q attrs %v", span.Name(), span.Attributes())
	}
	if v := testutil.ToFloat64(r.handler.metrics.requests[proxy.MethodIndex("_OTHER")][1]); v != 1 {
		t.Errorf("_OTHER 2xx counter = %v", v)
	}
}

func TestIdleStreamIsCut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: only\n\n")
		w.(http.Flusher).Flush()
		<-release // then silence
	}), func(s *Settings) { s.StreamIdleTimeout = 150 * time.Millisecond })
	resp := r.get("/events", nil)
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Error("stream ended cleanly; want it cut after the idle timeout")
	}
	if string(body) != "data: only\n\n" {
		t.Errorf("body = %q, want the one event before the cut", body)
	}
	span := r.onlySpan()
	if v := attr(t, span, "error.type").AsString(); v != "upstream_failed" {
		t.Errorf("error.type = %q", v)
	}
}
