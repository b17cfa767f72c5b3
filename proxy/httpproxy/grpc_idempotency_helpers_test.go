package httpproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy"
)

// Metadata the idempotency test app acts on.
const (
	mdIdemKey = "idempotency-key"
	// mdBare makes the app add no metadata of its own, so an error status
	// goes out as a Trailers-Only response.
	mdBare = "x-test-bare"
)

// idemGRPCApp counts every call that reaches it, per kind. Unless asked
// for a bare answer, each unary call also sends a header and a trailer
// naming its execution ("run-N"), so a replay shows which run it repeats.
type idemGRPCApp struct {
	*grpcApp
	unary, streamOut, streamIn, duplex atomic.Int64
	// gate, when set, holds every unary call until it is closed; started
	// receives one value per call held.
	gate    chan struct{}
	started chan struct{}
}

func newIdemGRPCApp() *idemGRPCApp { return &idemGRPCApp{grpcApp: newGRPCApp()} }

func (a *idemGRPCApp) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	run := strconv.FormatInt(a.unary.Add(1), 10)
	if a.gate != nil {
		a.started <- struct{}{}
		<-a.gate
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdBare)) == 0 {
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-app-run", "run-"+run)); err != nil {
			return nil, err
		}
		if err := grpc.SetTrailer(ctx, metadata.Pairs("x-app-trailer", "run-"+run)); err != nil {
			return nil, err
		}
	}
	return a.grpcApp.UnaryCall(ctx, req)
}

func (a *idemGRPCApp) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	a.streamOut.Add(1)
	return a.grpcApp.StreamingOutputCall(req, stream)
}

func (a *idemGRPCApp) StreamingInputCall(stream testgrpc.TestService_StreamingInputCallServer) error {
	a.streamIn.Add(1)
	return a.grpcApp.StreamingInputCall(stream)
}

func (a *idemGRPCApp) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	a.duplex.Add(1)
	return a.grpcApp.FullDuplexCall(stream)
}

// grpcIdemRig is a gRPC app behind a proxy that enforces Idempotency-Key
// with a real memory store, and a grpc-go client connected through it.
type grpcIdemRig struct {
	*rig
	app     *idemGRPCApp
	client  testgrpc.TestServiceClient
	store   dedupe.Store
	metrics *IdempotencyMetrics
}

// newGRPCIdemRig starts app (nil: a fresh one) behind a proxy enforcing s.
// store nil: a memory store on a fake clock.
func newGRPCIdemRig(t *testing.T, app *idemGRPCApp, s IdempotencySettings, store dedupe.Store, mutate ...func(*Settings)) *grpcIdemRig {
	t.Helper()
	if app == nil {
		app = newIdemGRPCApp()
	}
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if s.Clock == nil {
		s.Clock = clock
	}
	if store == nil {
		mem, err := dedupe.NewMemory(dedupe.MemorySettings{Clock: clock}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mem.Close)
		store = mem
	}
	return startGRPCIdemRig(t, startGRPCApp(t, app), app, s, store, mutate...)
}

func startGRPCIdemRig(t *testing.T, upstream string, app *idemGRPCApp, s IdempotencySettings, store dedupe.Store, mutate ...func(*Settings)) *grpcIdemRig {
	t.Helper()
	r := &rig{t: t, spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry()}
	gr := &grpcIdemRig{rig: r, app: app, store: store, metrics: NewIdempotencyMetrics(r.reg)}
	st := Settings{Upstream: &url.URL{Scheme: "http", Host: upstream}, AccessLog: true, Idempotency: &s}
	for _, m := range mutate {
		m(&st)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h, err := New(st, Deps{
		TracerProvider:     tp,
		Logger:             slog.New(proxy.NewLogHandler(slog.NewJSONHandler(r, nil))),
		Metrics:            NewMetrics(r.reg),
		IdempotencyStore:   store,
		IdempotencyMetrics: gr.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.handler = h
	srv := NewServer(ServerSettings{}, h)
	r.front = httptest.NewUnstartedServer(h)
	r.front.Config.Protocols = srv.Protocols
	r.front.Start()
	t.Cleanup(func() { r.front.Close(); h.Close() })
	gr.client = testgrpc.NewTestServiceClient(dialGRPC(t, strings.TrimPrefix(r.front.URL, "http://")))
	return gr
}

// count is tracecar_idempotency_requests_total{outcome=o}.
func (gr *grpcIdemRig) count(o idemOutcome) int {
	return int(testutil.ToFloat64(gr.metrics.requests[o]))
}

// wantCounts asserts the outcome counters; outcomes not named must be 0.
func (gr *grpcIdemRig) wantCounts(want map[idemOutcome]int) {
	gr.t.Helper()
	for o := range numOutcomes {
		if got := gr.count(o); got != want[o] {
			gr.t.Errorf("outcome %s counted %d, want %d", o, got, want[o])
		}
	}
}

// withKey is ctx carrying the idempotency-key metadata and the name, value
// pairs in md.
func withKey(ctx context.Context, key string, md ...string) context.Context {
	if key != "" {
		md = append([]string{mdIdemKey, key}, md...)
	}
	return metadata.AppendToOutgoingContext(ctx, md...)
}

// unaryResult is what a grpc-go client got from one unary call.
type unaryResult struct {
	resp    *testgrpc.SimpleResponse
	err     error
	header  metadata.MD
	trailer metadata.MD
}

func (u unaryResult) replayed() bool {
	v := u.header.Get(headerReplayed)
	return len(v) == 1 && v[0] == "true"
}

func (gr *grpcIdemRig) unary(ctx context.Context, req *testgrpc.SimpleRequest) unaryResult {
	var u unaryResult
	u.resp, u.err = gr.client.UnaryCall(ctx, req, grpc.Header(&u.header), grpc.Trailer(&u.trailer))
	return u
}

// appMetadata is md without what differs per call by design: the Date,
// the replay flag, and tracecar's per-call correlation headers.
func appMetadata(md metadata.MD) metadata.MD {
	out := md.Copy()
	for _, k := range []string{"date", strings.ToLower(headerReplayed), "x-correlation-id", "traceresponse"} {
		delete(out, k)
	}
	return out
}

// grpcFrameOf is msg as one length-prefixed gRPC message.
func grpcFrameOf(t testing.TB, msg proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, grpcPrefixLen, grpcPrefixLen+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b))) // #nosec G115 -- test messages are small
	return append(out, b...)
}

// rawReply is a gRPC response as it went over the wire, read with a plain
// HTTP/2 client: where grpc-status travelled (headers for Trailers-Only,
// trailers otherwise) shows.
type rawReply struct {
	status  int
	header  http.Header
	body    []byte
	trailer http.Header
}

// rawUnary sends body (the request's length-prefixed messages) to method
// over h2c with the key and the name, value pairs in hdr, as a gRPC client
// would, and reads the whole reply.
func (gr *grpcIdemRig) rawUnary(method, key string, body []byte, hdr ...string) rawReply {
	gr.t.Helper()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(gr.t.Context(), http.MethodPost, gr.front.URL+method, bytes.NewReader(body))
	if err != nil {
		gr.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set(headerIdempotencyKey, key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		gr.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		gr.t.Fatal(err)
	}
	return rawReply{status: resp.StatusCode, header: resp.Header, body: b, trailer: resp.Trailer}
}
