package grpcproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/proxy"
)

func TestUnaryReachesAuthority(t *testing.T) {
	a, addrA := startDest(t, "a")
	b, addrB := startDest(t, "b")
	r := newRig(t)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-app-key", "k1")
	for _, d := range []struct {
		app  *destApp
		addr string
	}{{a, addrA}, {b, addrB}} {
		var header, trailer metadata.MD
		res, err := r.client(d.addr).UnaryCall(ctx, unary("hello "+d.app.name), grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil {
			t.Fatalf("%s: %v", d.app.name, err)
		}
		if res.GetServerId() != d.app.name || string(res.GetPayload().GetBody()) != d.app.name+":hello "+d.app.name {
			t.Fatalf("%s answered by %q with %q", d.app.name, res.GetServerId(), res.GetPayload().GetBody())
		}
		if got := d.app.lastMD().Get("x-app-key"); len(got) != 1 || got[0] != "k1" {
			t.Fatalf("%s saw x-app-key %q", d.app.name, got)
		}
		if got := d.app.lastMD().Get(":authority"); len(got) != 1 || got[0] != d.addr {
			t.Fatalf("%s saw :authority %q, want %q", d.app.name, got, d.addr)
		}
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Fatalf("calls a=%d b=%d, want 1 each", a.calls.Load(), b.calls.Load())
	}

	spans := r.ended(2)
	s := spans[1]
	at := attrs(s)
	_, port, _ := net.SplitHostPort(addrB)
	wantPort, _ := strconv.Atoi(port)
	if s.Name() != "grpc.testing.TestService/UnaryCall" || s.SpanKind() != trace.SpanKindClient {
		t.Fatalf("span %q kind %v", s.Name(), s.SpanKind())
	}
	for k, want := range map[string]string{
		"rpc.system.name":          "grpc",
		"rpc.method":               "grpc.testing.TestService/UnaryCall",
		"rpc.response.status_code": "OK",
		"server.address":           "127.0.0.1",
		"tracecar.parent.source":   "none",
	} {
		if got := at[attribute.Key(k)].String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := at["server.port"].AsInt64(); got != int64(wantPort) {
		t.Errorf("server.port = %d, want %d", got, wantPort)
	}
	if s.Status().Code != otelcodes.Unset {
		t.Errorf("status %v on an OK call", s.Status())
	}
}

func TestBidiStream(t *testing.T) {
	a, addr := startDest(t, "a")
	r := newRig(t)
	stream, err := r.client(addr).FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Each reply must arrive before the next message is sent: the proxy
	// relays messages as they come, not when the stream ends.
	for i := range 5 {
		body := "msg-" + strconv.Itoa(i) + strings.Repeat("x", i*1000)
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.GetPayload().GetBody()); got != "a:"+body {
			t.Fatalf("reply %d = %.40q", i, got)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want EOF", err)
	}
	if a.calls.Load() != 1 {
		t.Fatalf("destination saw %d calls", a.calls.Load())
	}
	s := r.ended(1)[0]
	if s.Name() != "grpc.testing.TestService/FullDuplexCall" || attrs(s)["rpc.response.status_code"].AsString() != "OK" {
		t.Fatalf("span %q status_code %q", s.Name(), attrs(s)["rpc.response.status_code"].AsString())
	}
}

func TestStatusAndTrailersPassThrough(t *testing.T) {
	_, addr := startDest(t, "a")
	r := newRig(t)
	_, err := r.client(addr).UnaryCall(t.Context(), failing(codes.NotFound))
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "asked for NotFound" {
		t.Fatalf("got %v, want the destination's NOT_FOUND", err)
	}
	s := r.ended(1)[0]
	at := attrs(s)
	if at["rpc.response.status_code"].AsString() != "NOT_FOUND" || at["error.type"].AsString() != "NOT_FOUND" || s.Status().Code != otelcodes.Error {
		t.Fatalf("span attrs %v status %v", at, s.Status())
	}
}

func TestDialRefused(t *testing.T) {
	dest := closedAddr(t)
	r := newRig(t)
	_, err := r.client(dest).UnaryCall(t.Context(), unary("x"))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), dest) || !strings.Contains(st.Message(), "unreachable") {
		t.Fatalf("got %v, want UNAVAILABLE naming %s", err, dest)
	}
	at := attrs(r.ended(1)[0])
	if at["error.type"].AsString() != "upstream_unreachable" || at["rpc.response.status_code"].AsString() != "UNAVAILABLE" {
		t.Fatalf("span attrs %v", at)
	}
}

func TestDeniedDestination(t *testing.T) {
	a, addrA := startDest(t, "a")
	b, addrB := startDest(t, "b")
	_, portA, _ := net.SplitHostPort(addrA)
	r := newRig(t, func(s *Settings) {
		s.Allow = func(_ string, port uint16) bool { return strconv.Itoa(int(port)) == portA }
	})
	if _, err := r.client(addrA).UnaryCall(t.Context(), unary("x")); err != nil {
		t.Fatalf("allowed destination: %v", err)
	}
	_, err := r.client(addrB).UnaryCall(t.Context(), unary("x"))
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), addrB) {
		t.Fatalf("got %v, want PERMISSION_DENIED naming %s", err, addrB)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 0 {
		t.Fatalf("calls a=%d b=%d, want 1 and 0", a.calls.Load(), b.calls.Load())
	}
}

func TestBadAuthority(t *testing.T) {
	r := newRig(t)
	for name, tc := range map[string]struct{ authority, want string }{
		"no port":  {"orders.internal", "want host:port"},
		"port 0":   {"orders.internal:0", "port 1-65535"},
		"sidecar":  {"", "sidecar itself"}, // no WithAuthority: the authority is the proxy's own address
		"bad port": {"orders.internal:http", "port 1-65535"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.client(tc.authority).UnaryCall(t.Context(), unary("x"))
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.want) {
				t.Fatalf("got %v, want INVALID_ARGUMENT with %q", err, tc.want)
			}
		})
	}
}

func TestNotGRPC(t *testing.T) {
	r := newRig(t)
	// HTTP/2 but not gRPC.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+r.addr+"/grpc.testing.TestService/UnaryCall", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Grpc-Status") != "3" {
		t.Fatalf("h2 non-gRPC: %d grpc-status %q", res.StatusCode, res.Header.Get("Grpc-Status"))
	}
	// HTTP/1.1 gRPC-looking request.
	w := httptest.NewRecorder()
	h1 := httptest.NewRequest(http.MethodPost, "/grpc.testing.TestService/UnaryCall", nil)
	h1.Header.Set("Content-Type", "application/grpc")
	r.proxy.ServeHTTP(w, h1)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("HTTP/1.1: %d", w.Code)
	}
}

func TestBadSettings(t *testing.T) {
	for _, fc := range [][]codes.Code{{codes.Canceled}, {codes.ResourceExhausted}, {codes.OK}, {99}} {
		if _, err := New(Settings{FailureCodes: fc}, Deps{}); !errors.Is(err, ErrBadSettings) {
			t.Errorf("FailureCodes %v: %v, want ErrBadSettings", fc, err)
		}
	}
	if _, err := New(Settings{}, Deps{}); err != nil {
		t.Fatalf("zero settings: %v", err)
	}
}

func TestServerDefaults(t *testing.T) {
	srv := NewServer(proxy.ServerSettings{}, http.NotFoundHandler())
	if srv.Addr != DefaultAddr || !srv.Protocols.UnencryptedHTTP2() || srv.Protocols.HTTP1() {
		t.Fatalf("addr %q protocols %v", srv.Addr, srv.Protocols)
	}
}

// unaryCtx is a convenience for the tests that only care about the status.
func unaryCtx(t *testing.T, c testgrpc.TestServiceClient, ctx context.Context, req *testgrpc.SimpleRequest) codes.Code {
	t.Helper()
	_, err := c.UnaryCall(ctx, req)
	return status.Code(err)
}
