package grpcproxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// mdBlock makes a unary call wait until its context ends.
const mdBlock = "x-test-block"

// destApp is a gRPC TestService standing for one of the app's
// dependencies. It tags every answer with its name, counts the calls it
// receives and keeps the metadata of the last one.
type destApp struct {
	testgrpc.UnimplementedTestServiceServer

	name    string
	calls   atomic.Int64
	blocked chan struct{}

	mu sync.Mutex
	md metadata.MD
}

func (a *destApp) note(ctx context.Context) {
	a.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	a.md = md.Copy()
	a.mu.Unlock()
}

// lastMD is the metadata of the last call received.
func (a *destApp) lastMD() metadata.MD {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.md
}

func (a *destApp) tag(body []byte) []byte { return append([]byte(a.name+":"), body...) }

// UnaryCall answers the requested status, or its name and the payload.
func (a *destApp) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	a.note(ctx)
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdBlock)) > 0 {
		a.blocked <- struct{}{}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if s := req.GetResponseStatus(); s.GetCode() != 0 {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testgrpc.SimpleResponse{ServerId: a.name, Payload: &testgrpc.Payload{Body: a.tag(req.GetPayload().GetBody())}}, nil
}

// FullDuplexCall echoes each payload, tagged, as soon as it arrives.
func (a *destApp) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	a.note(stream.Context())
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: a.tag(req.GetPayload().GetBody())}}); err != nil {
			return err
		}
	}
}

// startDest serves a destApp named name on a loopback port (gRPC speaks h2c
// with prior knowledge) and returns it with its address.
func startDest(tb testing.TB, name string) (*destApp, string) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := &destApp{name: name, blocked: make(chan struct{}, 16)}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, a)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return a, lis.Addr().String()
}

// fakeClock is a breaker.Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rig is a real Proxy served with NewServer's protocols on a loopback port,
// recording its spans, with a stitch registry and breakers on a fake clock.
type rig struct {
	t        testing.TB
	proxy    *Proxy
	addr     string
	spans    *tracetest.SpanRecorder
	stitch   *stitch.Registry
	breakers *breaker.Set
	clock    *fakeClock
}

// breakerSettings trip after 3 consecutive failures and stay open 10s.
var breakerSettings = breaker.Settings{
	ConsecutiveFailures: 3,
	MinRequests:         1000,
	OpenTimeout:         10 * time.Second,
	Rand:                func() float64 { return 0.5 },
}

func newRig(tb testing.TB, mutate ...func(*Settings)) *rig {
	tb.Helper()
	r := &rig{
		t:      tb,
		spans:  tracetest.NewSpanRecorder(),
		stitch: stitch.New(stitch.Settings{}, nil),
		clock:  &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	bs := breakerSettings
	bs.Clock = r.clock
	r.breakers = breaker.NewSet(bs, nil, 0)
	var s Settings
	for _, m := range mutate {
		m(&s)
	}
	// A benchmark's spans are sampled and recorded but kept nowhere, so
	// memory stays flat.
	var opts []sdktrace.TracerProviderOption
	if _, bench := tb.(*testing.B); !bench {
		opts = append(opts, sdktrace.WithSpanProcessor(r.spans))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p, err := New(s, Deps{
		TracerProvider: tp,
		Logger:         slog.New(proxy.NewLogHandler(slog.NewTextHandler(io.Discard, nil))),
		Stitch:         r.stitch,
		Breakers:       r.breakers,
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.proxy = p
	front := httptest.NewUnstartedServer(p)
	front.Config.Protocols = NewServer(proxy.ServerSettings{}, p).Protocols
	front.Start()
	tb.Cleanup(func() { front.Close(); p.Close() })
	r.addr = strings.TrimPrefix(front.URL, "http://")
	return r
}

// client is a TestService client that dials the proxy and names dest in
// the :authority, as an app does.
func (r *rig) client(dest string) testgrpc.TestServiceClient {
	r.t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if dest != "" {
		opts = append(opts, grpc.WithAuthority(dest))
	}
	cc, err := grpc.NewClient(r.addr, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// ended waits until n spans have ended and returns them.
func (r *rig) ended(n int) []sdktrace.ReadOnlySpan {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.spans.Ended()
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d spans ended, want %d", len(s), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range s.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func unary(body string) *testgrpc.SimpleRequest {
	return &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(body)}}
}

func failing(c codes.Code) *testgrpc.SimpleRequest {
	return &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(c), Message: "asked for " + c.String()}}
}
