package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tlsDestination is a real TLS server and a client that trusts it and
// reaches it through the proxy with CONNECT.
func tlsDestination(t *testing.T, r *rig, body string) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(r.proxyURL())
	c := &http.Client{Transport: tr}
	t.Cleanup(c.CloseIdleConnections)
	return srv, c
}

func TestConnectTunnel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closer func(srv *httptest.Server, c *http.Client)
	}{
		{"client closes", func(_ *httptest.Server, c *http.Client) { c.CloseIdleConnections() }},
		{"destination closes", func(srv *httptest.Server, _ *http.Client) { srv.CloseClientConnections() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			srv, c := tlsDestination(t, r, "secret over TLS")
			resp, err := c.Get(srv.URL + "/inside")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || body != "secret over TLS" {
				t.Fatalf("through the tunnel: %d %q", resp.StatusCode, body)
			}
			if n := len(r.spans.Ended()); n != 0 {
				t.Fatalf("%d spans ended while the tunnel is open", n)
			}
			tc.closer(srv, c)
			span := r.onlySpan()
			if span.Name() != "CONNECT" || span.SpanKind() != trace.SpanKindClient {
				t.Errorf("span %q kind %v, want CONNECT client", span.Name(), span.SpanKind())
			}
			host, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
			if v := attr(t, span, "server.address").AsString(); v != host {
				t.Errorf("server.address = %q, want %q", v, host)
			}
			if v := attr(t, span, "server.port").String(); v != port {
				t.Errorf("server.port = %q, want %q", v, port)
			}
			// A TLS handshake and one request each way: well over 100 bytes.
			sent, recv := attr(t, span, "tracecar.tunnel.bytes_sent").AsInt64(), attr(t, span, "tracecar.tunnel.bytes_received").AsInt64()
			if sent < 100 || recv < 100 {
				t.Errorf("bytes sent %d received %d, want both > 100", sent, recv)
			}
			// TLS close_notify makes the other side close at once, so either
			// end may reach the tunnel first; the plain-TCP tests below pin
			// each end reason.
			end := attr(t, span, "tracecar.tunnel.end_reason").AsString()
			if end != "client_closed" && end != "upstream_closed" {
				t.Errorf("end_reason = %q, want a clean close", end)
			}
			if v := attr(t, span, "tracecar.parent.source").AsString(); v != "none" {
				t.Errorf("parent source %q, want none", v)
			}
			if span.Status().Code == codes.Error {
				t.Errorf("status %v for a clean tunnel", span.Status())
			}
			if hasAttr(span, "url.full") {
				t.Error("a tunnel span has url.full")
			}
			if got := testutil.ToFloat64(r.proxy.metrics.tunnels); got != 1 {
				t.Errorf("tunnels_total = %v, want 1", got)
			}
			eventually(t, "the concurrency slot to be freed", func() bool { return r.proxy.inflight.Load() == 0 })
			if !strings.Contains(r.log(), `"end":"`+end+`"`) {
				t.Errorf("no tunnel log line: %s", r.log())
			}
		})
	}
}

func TestConnectDialFailure(t *testing.T) {
	r := newRig(t)
	target := closedPort(t)
	resp, body := r.rawConnect(target)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("CONNECT to a closed port got %d, want 502", resp.StatusCode)
	}
	p := problem(t, resp, body)
	if p.Upstream != target || !strings.Contains(p.Detail, "upstream unreachable") {
		t.Errorf("problem %+v", p)
	}
	span := r.onlySpan()
	if span.Status().Code != codes.Error || attr(t, span, "error.type").AsString() != "upstream_unreachable" {
		t.Errorf("span status %v error.type %v", span.Status(), attr(t, span, "error.type").String())
	}
	if r.proxy.inflight.Load() != 0 {
		t.Error("concurrency slot leaked")
	}
}

func TestConnectNeedsPort(t *testing.T) {
	r := newRig(t)
	resp, body := r.rawConnect("example.com")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("CONNECT without a port got %d, want 400", resp.StatusCode)
	}
	problem(t, resp, body)
}

func TestCloseEndsOpenTunnels(t *testing.T) {
	r := newRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c) // an open tunnel: neither side ends it
		_ = c.Close()
	}()
	connectRaw(t, r, ln.Addr().String()) // tracked before the 200 is sent
	r.proxy.Close()
	span := r.onlySpan()
	if v := attr(t, span, "tracecar.tunnel.end_reason").AsString(); v != "shutdown" {
		t.Errorf("end_reason = %q, want shutdown", v)
	}
}

// connectRaw opens a CONNECT tunnel to dest through the proxy by hand.
func connectRaw(t *testing.T, r *rig, dest string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", r.proxyURL().Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	return conn, br
}

// TestConnectTunnelClientCloses: the client finishes sending first (a
// half-close); the destination answers and closes only after it saw that.
func TestConnectTunnelClientCloses(t *testing.T) {
	r := newRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		got, _ := io.ReadAll(c) // until the client's end arrives
		_, _ = io.WriteString(c, "read "+strconv.Itoa(len(got)))
		_ = c.Close()
	}()
	conn, br := connectRaw(t, r, ln.Addr().String())
	if _, err := io.WriteString(conn, "hello"); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(br); err != nil || string(got) != "read 5" {
		t.Fatalf("answer %q %v", got, err)
	}
	span := r.onlySpan()
	if v := attr(t, span, "tracecar.tunnel.end_reason").AsString(); v != "client_closed" {
		t.Errorf("end_reason = %q, want client_closed", v)
	}
	if v := attr(t, span, "tracecar.tunnel.bytes_sent").AsInt64(); v != 5 {
		t.Errorf("bytes_sent = %d, want 5", v)
	}
}

// TestConnectTunnelDestinationCloses uses a plain TCP destination: a TLS
// server's close_notify would let the client close its side in the same
// instant, and which end the tunnel sees first would be a race.
func TestConnectTunnelDestinationCloses(t *testing.T) {
	r := newRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "goodbye")
		_ = c.Close()
	}()
	conn, br := connectRaw(t, r, ln.Addr().String())
	// The client reads until the destination's end reaches it, and only
	// then closes: the tunnel has seen the destination finish first.
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "goodbye" {
		t.Fatalf("through the tunnel: %q %v", got, err)
	}
	_ = conn.Close()
	span := r.onlySpan()
	if v := attr(t, span, "tracecar.tunnel.end_reason").AsString(); v != "upstream_closed" {
		t.Errorf("end_reason = %q, want upstream_closed", v)
	}
	if v := attr(t, span, "tracecar.tunnel.bytes_received").AsInt64(); v != int64(len("goodbye")) {
		t.Errorf("bytes_received = %d, want %d", v, len("goodbye"))
	}
}
