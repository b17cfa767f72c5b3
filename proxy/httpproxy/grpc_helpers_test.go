package httpproxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/proxy"
)

// Metadata the test app acts on. The echo keys are those of gRPC's interop
// suite; mdBlock makes a unary call wait until its context ends.
const (
	mdEchoInitial  = "x-grpc-test-echo-initial"
	mdEchoTrailing = "x-grpc-test-echo-trailing-bin"
	mdBlock        = "x-test-block"
)

// pattern is n deterministic bytes depending on seed, so a payload that
// arrives shifted, truncated or mixed with another is caught.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>8)
	}
	return b
}

// grpcApp is a gRPC TestService that echoes payloads, metadata and
// requested statuses, and reports what it saw: request metadata, the
// deadline, and when a blocked call's context ended.
type grpcApp struct {
	testgrpc.UnimplementedTestServiceServer

	mu       sync.Mutex
	md       metadata.MD
	deadline time.Time
	hasDL    bool

	blocked chan struct{} // a blocking call started
	ended   chan error    // a blocking call's context ended, with ctx.Err()
}

func newGRPCApp() *grpcApp {
	return &grpcApp{blocked: make(chan struct{}, 8), ended: make(chan error, 8)}
}

func (a *grpcApp) note(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	dl, ok := ctx.Deadline()
	a.mu.Lock()
	a.md, a.deadline, a.hasDL = md.Copy(), dl, ok
	a.mu.Unlock()
}

func (a *grpcApp) seen() (metadata.MD, time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.md, a.deadline, a.hasDL
}

// echoMetadata sends back the interop echo keys: initial as a header,
// trailing as a trailer.
func echoMetadata(ctx context.Context, header, trailer func(metadata.MD) error) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(mdEchoInitial); len(v) > 0 {
		if err := header(metadata.Pairs(mdEchoInitial, v[0])); err != nil {
			return err
		}
	}
	if v := md.Get(mdEchoTrailing); len(v) > 0 {
		if err := trailer(metadata.Pairs(mdEchoTrailing, v[0])); err != nil {
			return err
		}
	}
	return nil
}

func echoStatus(s *testgrpc.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

// UnaryCall echoes the request payload (or sends ResponseSize pattern
// bytes), or the requested status.
func (a *grpcApp) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	a.note(ctx)
	if err := echoMetadata(ctx,
		func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdBlock)) > 0 {
		a.blocked <- struct{}{}
		<-ctx.Done()
		a.ended <- ctx.Err()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return nil, err
	}
	body := req.GetPayload().GetBody()
	if n := req.GetResponseSize(); n > 0 {
		body = pattern(int(n), 0)
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: body}}, nil
}

// StreamingOutputCall sends one pattern payload per response parameter,
// seeded by its index.
func (a *grpcApp) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	a.note(stream.Context())
	if err := echoMetadata(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil }); err != nil {
		return err
	}
	for i, p := range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: pattern(int(p.GetSize()), i)}}); err != nil {
			return err
		}
	}
	return echoStatus(req.GetResponseStatus())
}

// StreamingInputCall checks that message i is pattern(len, i) and answers
// the total size; a corrupted message fails the call with DATA_LOSS.
func (a *grpcApp) StreamingInputCall(stream testgrpc.TestService_StreamingInputCallServer) error {
	a.note(stream.Context())
	total := 0
	for i := 0; ; i++ {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		body := req.GetPayload().GetBody()
		if want := pattern(len(body), i); string(body) != string(want) {
			return status.Errorf(codes.DataLoss, "message %d corrupted", i)
		}
		total += len(body)
	}
}

// FullDuplexCall echoes each request payload as soon as it arrives, or
// ends with the status a request asks for.
func (a *grpcApp) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	a.note(stream.Context())
	if err := echoMetadata(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil }); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.GetResponseStatus()); err != nil {
			return err
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// startGRPCApp serves app on a loopback port (gRPC speaks h2c with prior
// knowledge) and returns its address.
func startGRPCApp(tb testing.TB, app testgrpc.TestServiceServer) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, app)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return lis.Addr().String()
}

// newGRPCRig puts a real proxy in front of the gRPC app at upstream (a
// host:port) and returns the rig with a client connected through it.
func newGRPCRig(t *testing.T, upstream string, mutate ...func(*Settings)) (*rig, testgrpc.TestServiceClient, *grpc.ClientConn) {
	t.Helper()
	r := &rig{t: t, spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry()}
	r.handler, r.front = startGRPCProxy(t, upstream, r, sdktrace.WithSpanProcessor(r.spans), mutate...)
	cc := dialGRPC(t, strings.TrimPrefix(r.front.URL, "http://"))
	return r, testgrpc.NewTestServiceClient(cc), cc
}

func startGRPCProxy(tb testing.TB, upstream string, log io.Writer, opt sdktrace.TracerProviderOption, mutate ...func(*Settings)) (*Handler, *httptest.Server) {
	tb.Helper()
	s := Settings{Upstream: &url.URL{Scheme: "http", Host: upstream}}
	for _, m := range mutate {
		m(&s)
	}
	tp := sdktrace.NewTracerProvider(opt)
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h, err := New(s, Deps{
		TracerProvider: tp,
		Logger:         slog.New(proxy.NewLogHandler(slog.NewJSONHandler(log, nil))),
		Metrics:        NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(ServerSettings{}, h)
	front := httptest.NewUnstartedServer(h)
	front.Config.Protocols = srv.Protocols
	front.Start()
	tb.Cleanup(func() { front.Close(); h.Close() })
	return h, front
}

func dialGRPC(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
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

// within waits for ch to deliver, failing after d.
func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
		var zero T
		return zero
	}
}

func statusCode(err error) codes.Code { return status.Code(err) }
