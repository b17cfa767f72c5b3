package httpproxy

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

const unaryPath = "/grpc.testing.TestService/UnaryCall"

func TestGRPCIdempotency_RetriesExecuteOnce(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	const key = "pay-7f3a-grpc"
	binTrailer := string([]byte{0, 1, 0xfe, 0xff})
	ctx := withKey(t.Context(), key, mdEchoInitial, "hello", mdEchoTrailing, binTrailer)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: pattern(2000, 5)}}

	const n = 5
	var first unaryResult
	for i := range n {
		u := gr.unary(ctx, req)
		if u.err != nil {
			t.Fatalf("call %d: %v", i, u.err)
		}
		if i == 0 {
			first = u
			if u.replayed() {
				t.Fatal("the first call is marked replayed")
			}
			continue
		}
		if !u.replayed() {
			t.Errorf("retry %d: header %s = %q, want true", i, headerReplayed, u.header.Get(headerReplayed))
		}
		if !bytes.Equal(u.resp.GetPayload().GetBody(), first.resp.GetPayload().GetBody()) {
			t.Errorf("retry %d: payload of %d bytes differs from the first call's", i, len(u.resp.GetPayload().GetBody()))
		}
		if a, b := appMetadata(first.header), appMetadata(u.header); !reflect.DeepEqual(a, b) {
			t.Errorf("retry %d: header metadata differs:\nfirst  %v\nreplay %v", i, a, b)
		}
		if !reflect.DeepEqual(first.trailer, u.trailer) {
			t.Errorf("retry %d: trailers differ:\nfirst  %v\nreplay %v", i, first.trailer, u.trailer)
		}
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Fatalf("the app executed %d calls for %d with one key, want 1", got, n)
	}
	if !bytes.Equal(first.resp.GetPayload().GetBody(), req.GetPayload().GetBody()) {
		t.Error("the first call did not get the app's echo")
	}
	// Every call got what the one execution sent: its header, its custom
	// and -bin trailers.
	if v := first.header.Get("x-app-run"); len(v) != 1 || v[0] != "run-1" {
		t.Errorf("header x-app-run = %q, want [run-1]", v)
	}
	if v := first.trailer.Get("x-app-trailer"); len(v) != 1 || v[0] != "run-1" {
		t.Errorf("trailer x-app-trailer = %q, want [run-1]", v)
	}
	if v := first.trailer.Get(mdEchoTrailing); len(v) != 1 || v[0] != binTrailer {
		t.Errorf("trailer %s = %q", mdEchoTrailing, v)
	}
	md, _, _ := gr.app.seen()
	if v := md.Get(mdIdemKey); len(v) != 1 || v[0] != key {
		t.Errorf("the app saw idempotency-key %q, want %q", v, key)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeReplayed: n - 1})
	spans := gr.waitSpans(n)
	// The execution's span has its message events, as any gRPC call's.
	var received, sent int
	for _, ev := range spans[0].Events() {
		if ev.Name != eventMessage {
			continue
		}
		for _, kv := range ev.Attributes {
			switch {
			case kv.Key == attrMessageType && kv.Value.AsString() == "RECEIVED":
				received++
			case kv.Key == attrMessageType && kv.Value.AsString() == "SENT":
				sent++
			}
		}
	}
	if received != 1 || sent != 1 {
		t.Errorf("the execution's span has %d RECEIVED and %d SENT message events, want 1 and 1", received, sent)
	}
	if got := attr(t, spans[n-1], string(attrIdemOutcome)).AsString(); got != "replayed" {
		t.Errorf("last span: %s = %q, want replayed", attrIdemOutcome, got)
	}
	for _, ev := range []string{eventIdemClaim, eventIdemRecord, eventIdemReplay} {
		if !hasSpanEvent(gr.rig, ev, keyHash(key)) {
			t.Errorf("no span event %s with the key hash", ev)
		}
	}
	if strings.Contains(gr.log(), key) {
		t.Error("the key appears whole in the log")
	}
}

// TestGRPCIdempotency_ReplayIsByteForByte reads the wire with a plain HTTP/2
// client: the replay has the same message bytes, headers and trailers.
func TestGRPCIdempotency_ReplayIsByteForByte(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	payload := &testgrpc.Payload{Body: pattern(300, 9)}
	body := grpcFrameOf(t, &testgrpc.SimpleRequest{Payload: payload})
	first := gr.rawUnary(unaryPath, "raw-1", body)
	second := gr.rawUnary(unaryPath, "raw-1", body)
	if first.status != 200 || first.header.Get(headerGRPCStatus) != "" {
		t.Fatalf("first: status %d, header %v", first.status, first.header)
	}
	if want := grpcFrameOf(t, &testgrpc.SimpleResponse{Payload: payload}); !bytes.Equal(first.body, want) {
		t.Fatalf("first body %x, want the app's one message %x", first.body, want)
	}
	if !bytes.Equal(second.body, first.body) {
		t.Errorf("replayed body %x, want %x", second.body, first.body)
	}
	if second.header.Get(headerReplayed) != "true" || first.header.Get(headerReplayed) != "" {
		t.Errorf("replay flags: first %q, second %q", first.header.Get(headerReplayed), second.header.Get(headerReplayed))
	}
	if !reflect.DeepEqual(first.trailer, second.trailer) || first.trailer.Get(headerGRPCStatus) != "0" ||
		first.trailer.Get("X-App-Trailer") != "run-1" {
		t.Errorf("trailers: first %v, replay %v", first.trailer, second.trailer)
	}
	if a, b := endToEnd(first.header), endToEnd(second.header); !reflect.DeepEqual(a, b) {
		t.Errorf("headers differ:\nfirst  %v\nreplay %v", a, b)
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Errorf("app executed %d calls, want 1", got)
	}
}

func TestGRPCIdempotency_ConcurrentSameKeyExecutesOnce(t *testing.T) {
	const n = 20
	app := newIdemGRPCApp()
	app.gate, app.started = make(chan struct{}), make(chan struct{}, n)
	var open sync.Once
	release := func() { open.Do(func() { close(app.gate) }) }
	gr := newGRPCIdemRig(t, app, IdempotencySettings{}, nil)
	t.Cleanup(release) // before the app stops, whatever happened

	ctx := withKey(t.Context(), "concurrent-1")
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("charge 100")}}
	results := make(chan unaryResult, n)
	for range n {
		go func() { results <- gr.unary(ctx, req) }()
	}
	within(t, app.started, 5*time.Second, "the one execution")
	// While it runs, every other call is answered ABORTED with a retry hint.
	for i := range n - 1 {
		u := within(t, results, 10*time.Second, "a concurrent call")
		if got := status.Code(u.err); got != codes.Aborted {
			t.Fatalf("concurrent call %d: code %v (%v), want Aborted", i, got, u.err)
		}
		if !strings.Contains(status.Convert(u.err).Message(), "still being processed") {
			t.Errorf("message %q does not say why", status.Convert(u.err).Message())
		}
		if v := u.trailer.Get("grpc-retry-pushback-ms"); len(v) != 1 || v[0] != "1000" {
			t.Errorf("grpc-retry-pushback-ms = %q (header %v), want [1000]", v, u.header)
		}
	}
	release()
	u := within(t, results, 10*time.Second, "the executed call")
	if u.err != nil || u.replayed() || string(u.resp.GetPayload().GetBody()) != "charge 100" {
		t.Fatalf("executed call: %v, replayed=%v", u.err, u.replayed())
	}
	if got := app.unary.Load(); got != 1 {
		t.Fatalf("the app executed %d of %d concurrent calls, want 1", got, n)
	}
	if again := gr.unary(ctx, req); again.err != nil || !again.replayed() {
		t.Fatalf("retry after completion: %v, replayed=%v", again.err, again.replayed())
	}
	gr.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeConflict: n - 1, outcomeReplayed: 1})
}

func TestGRPCIdempotency_AppErrorReplayed(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	ctx := withKey(t.Context(), "err-1", mdEchoInitial, "i", mdEchoTrailing, "\x00\xff")
	req := &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{
		Code: int32(codes.Internal), Message: "ledger write failed: 50% done, ünïcode",
	}}
	first := gr.unary(ctx, req)
	second := gr.unary(ctx, req)
	for i, u := range []unaryResult{first, second} {
		st := status.Convert(u.err)
		if st.Code() != codes.Internal || st.Message() != req.GetResponseStatus().GetMessage() {
			t.Fatalf("call %d: status %v %q, want the app's", i, st.Code(), st.Message())
		}
	}
	if !second.replayed() || first.replayed() {
		t.Errorf("replay flags: first %v, second %v", first.replayed(), second.replayed())
	}
	if a, b := appMetadata(first.header), appMetadata(second.header); !reflect.DeepEqual(a, b) || len(a.Get("x-app-run")) != 1 {
		t.Errorf("header metadata:\nfirst  %v\nreplay %v", a, b)
	}
	if !reflect.DeepEqual(first.trailer, second.trailer) || first.trailer.Get("x-app-trailer")[0] != "run-1" ||
		first.trailer.Get(mdEchoTrailing)[0] != "\x00\xff" {
		t.Errorf("trailers:\nfirst  %v\nreplay %v", first.trailer, second.trailer)
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Fatalf("app executed %d calls, want 1", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeReplayed: 1})
}

// A Trailers-Only answer (grpc-status among the headers, no body) is
// replayed as Trailers-Only.
func TestGRPCIdempotency_TrailersOnlyReplayedAsTrailersOnly(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	body := grpcFrameOf(t, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{
		Code: int32(codes.NotFound), Message: "no such order",
	}})
	first := gr.rawUnary(unaryPath, "tonly-1", body, mdBare, "1")
	second := gr.rawUnary(unaryPath, "tonly-1", body, mdBare, "1")
	for i, p := range []rawReply{first, second} {
		if p.status != 200 || p.header.Get(headerGRPCStatus) != "5" || p.header.Get(headerGRPCMessage) != "no such order" ||
			len(p.body) != 0 || len(p.trailer) != 0 {
			t.Fatalf("call %d: status %d, header %v, %d body bytes, trailer %v; want Trailers-Only NOT_FOUND",
				i, p.status, p.header, len(p.body), p.trailer)
		}
	}
	if second.header.Get(headerReplayed) != "true" {
		t.Errorf("replay header %v", second.header)
	}
	if a, b := endToEnd(first.header), endToEnd(second.header); !reflect.DeepEqual(a, b) {
		t.Errorf("headers differ:\nfirst  %v\nreplay %v", a, b)
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Fatalf("app executed %d calls, want 1", got)
	}
	// grpc-go reads the replay as the status the app sent.
	_, err := gr.client.UnaryCall(withKey(t.Context(), "tonly-1", mdBare, "1"), &testgrpc.SimpleRequest{
		ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "no such order"}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such order" {
		t.Fatalf("grpc-go client got %v", err)
	}
}

func TestGRPCIdempotency_DifferentPayloadSameKey(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	ctx := withKey(t.Context(), "mismatch-1")
	a := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("amount=100")}}
	b := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("amount=900")}}
	if u := gr.unary(ctx, a); u.err != nil {
		t.Fatal(u.err)
	}
	u := gr.unary(ctx, b)
	if st := status.Convert(u.err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "different request") {
		t.Fatalf("same key, other payload: %v, want FailedPrecondition naming the mismatch", u.err)
	}
	if again := gr.unary(ctx, a); again.err != nil || !again.replayed() || string(again.resp.GetPayload().GetBody()) != "amount=100" {
		t.Fatalf("the original request after the mismatch: %v, replayed=%v", again.err, again.replayed())
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Fatalf("app executed %d calls, want 1", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeMismatch: 1, outcomeReplayed: 1})
}

func TestGRPCIdempotency_ServerStreamingNotReplayable(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	ctx := withKey(t.Context(), "stream-1")
	req := &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 2000}, {Size: 30}}}
	stream, err := gr.client.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range req.GetResponseParameters() {
		resp, err := stream.Recv()
		if err != nil || !bytes.Equal(resp.GetPayload().GetBody(), pattern(int(p.GetSize()), i)) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of the first stream: %v", err)
	}

	retry, err := gr.client.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = retry.Recv()
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "more than one response message") ||
		!strings.Contains(st.Message(), "will not be executed again") {
		t.Fatalf("retry of a server stream: %v, want FailedPrecondition saying it was executed", err)
	}
	// A Trailers-Only answer: grpc-go hands its metadata over as trailers.
	if tr := retry.Trailer(); len(tr.Get(headerReplayed)) != 1 {
		t.Errorf("no %s on the retry: trailer %v", headerReplayed, tr)
	}
	if got := gr.app.streamOut.Load(); got != 1 {
		t.Fatalf("app executed %d streams, want 1", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeExecuted: 1, outcomeNotReplayable: 1})
}

func TestGRPCIdempotency_WithoutKeyUnchanged(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("no key")}}
	for i := range 3 {
		u := gr.unary(t.Context(), req)
		if u.err != nil || u.replayed() || string(u.resp.GetPayload().GetBody()) != "no key" {
			t.Fatalf("call %d: %v, replayed=%v", i, u.err, u.replayed())
		}
		if v := u.header.Get("x-app-run"); len(v) != 1 || v[0] != "run-"+string(rune('1'+i)) {
			t.Errorf("call %d answered by run %q", i, v)
		}
	}
	if got := gr.app.unary.Load(); got != 3 {
		t.Fatalf("app executed %d calls, want 3", got)
	}
	gr.wantCounts(nil)
}

// A key protects one request message. A call that streams its request is
// refused before the app sees it, whether it sends a second message or
// holds its stream open waiting for an answer; one that sends a single
// message and ends its stream is protected like a unary call.
func TestGRPCIdempotency_StreamingRequestsRefused(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)

	cs, err := gr.client.StreamingInputCall(withKey(t.Context(), "cstream-1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_ = cs.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: pattern(100, i)}}) // may see the end
	}
	_, err = cs.CloseAndRecv()
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "idempotency-key applies to unary calls") {
		t.Fatalf("client stream of two messages: %v", err)
	}

	start := time.Now()
	bidi, err := gr.client.FullDuplexCall(withKey(t.Context(), "bidi-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bidi.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte("ping")}}); err != nil {
		t.Fatal(err)
	}
	_, err = bidi.Recv()
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "stayed open") {
		t.Fatalf("bidi stream held open: %v", err)
	}
	if waited := time.Since(start); waited < grpcHalfCloseWait {
		t.Errorf("refused after %v, before the %v half-close wait", waited, grpcHalfCloseWait)
	}
	if in, dup := gr.app.streamIn.Load(), gr.app.duplex.Load(); in != 0 || dup != 0 {
		t.Fatalf("the app saw %d client streams and %d bidi streams, want none", in, dup)
	}

	// One message, then the end of the stream: as good as unary.
	one := func() (*testgrpc.StreamingInputCallResponse, metadata.MD, error) {
		s, err := gr.client.StreamingInputCall(withKey(t.Context(), "cstream-one"))
		if err != nil {
			return nil, nil, err
		}
		if err := s.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: pattern(64, 0)}}); err != nil {
			return nil, nil, err
		}
		resp, err := s.CloseAndRecv()
		h, _ := s.Header()
		return resp, h, err
	}
	for i := range 2 {
		resp, h, err := one()
		if err != nil || resp.GetAggregatedPayloadSize() != 64 {
			t.Fatalf("single-message client stream %d: %v", i, err)
		}
		if replayed := len(h.Get(headerReplayed)) == 1; replayed != (i == 1) {
			t.Errorf("single-message client stream %d: replayed=%v", i, replayed)
		}
	}
	if got := gr.app.streamIn.Load(); got != 1 {
		t.Errorf("app executed %d single-message client streams, want 1", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeNotUnary: 2, outcomeExecuted: 1, outcomeReplayed: 1})
}

func TestGRPCIdempotency_RequestOverCap(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{MaxRequestBytes: 1024}, nil,
		func(s *Settings) { s.GRPCMaxRecvMessageBytes = 8 << 10 })
	u := gr.unary(withKey(t.Context(), "big-1"), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: pattern(4096, 1)}})
	if st := status.Convert(u.err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "1024-byte limit") {
		t.Fatalf("over the idempotency cap: %v, want ResourceExhausted naming the limit", u.err)
	}
	// The message limit applies to protected calls too.
	u = gr.unary(withKey(t.Context(), "big-2"), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: pattern(16<<10, 1)}})
	if st := status.Convert(u.err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
		t.Fatalf("over the message limit: %v, want ResourceExhausted", u.err)
	}
	if got := gr.app.unary.Load(); got != 0 {
		t.Fatalf("app executed %d calls, want 0", got)
	}
	// Under both, the same key executes: nothing was recorded.
	if u := gr.unary(withKey(t.Context(), "big-1"), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("small")}}); u.err != nil || u.replayed() {
		t.Fatalf("small call with the refused key: %v", u.err)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeTooLarge: 2, outcomeExecuted: 1})
}

func TestGRPCIdempotency_KeyErrors(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{Routes: []IdemRoute{
		{Method: "POST", Path: "/grpc.testing.TestService/*", Mode: IdemRequired},
	}}, nil)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
	u := gr.unary(t.Context(), req)
	if st := status.Convert(u.err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "requires an Idempotency-Key") {
		t.Fatalf("no key on a required route: %v", u.err)
	}
	long := strings.Repeat("k", 256)
	u = gr.unary(withKey(t.Context(), long), req)
	if st := status.Convert(u.err); st.Code() != codes.InvalidArgument || strings.Contains(st.Message(), long) {
		t.Fatalf("key over 255 characters: %v", u.err)
	}
	u = gr.unary(withKey(t.Context(), "a", mdIdemKey, "b"), req)
	if st := status.Convert(u.err); st.Code() != codes.InvalidArgument {
		t.Fatalf("two keys: %v", u.err)
	}
	if got := gr.app.unary.Load(); got != 0 {
		t.Fatalf("app executed %d calls, want 0", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeMissing: 1, outcomeInvalid: 2})
}

// The app's statuses are outcomes, replayed like HTTP 5xx, except those
// whose HTTP counterpart is a release status (default 429:
// RESOURCE_EXHAUSTED), which let a retry execute.
func TestGRPCIdempotency_ReleaseStatuses(t *testing.T) {
	call := func(gr *grpcIdemRig, key string, code codes.Code) unaryResult {
		return gr.unary(withKey(t.Context(), key), &testgrpc.SimpleRequest{
			ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: "try later"}})
	}
	t.Run("default", func(t *testing.T) {
		gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
		for range 2 {
			if u := call(gr, "exhausted", codes.ResourceExhausted); status.Code(u.err) != codes.ResourceExhausted || u.replayed() {
				t.Fatalf("RESOURCE_EXHAUSTED: %v, replayed=%v", u.err, u.replayed())
			}
		}
		if got := gr.app.unary.Load(); got != 2 {
			t.Fatalf("RESOURCE_EXHAUSTED released: app executed %d calls, want 2", got)
		}
		for i := range 2 {
			if u := call(gr, "unavailable", codes.Unavailable); status.Code(u.err) != codes.Unavailable || u.replayed() != (i == 1) {
				t.Fatalf("UNAVAILABLE call %d: %v, replayed=%v", i, u.err, u.replayed())
			}
		}
		if got := gr.app.unary.Load(); got != 3 {
			t.Fatalf("UNAVAILABLE recorded: app executed %d calls in all, want 3", got)
		}
		gr.wantCounts(map[idemOutcome]int{outcomeReleased: 2, outcomeExecuted: 1, outcomeReplayed: 1})
	})
	t.Run("503 added", func(t *testing.T) {
		gr := newGRPCIdemRig(t, nil, IdempotencySettings{ReleaseStatuses: []int{429, 503}}, nil)
		for range 2 {
			if u := call(gr, "unavailable", codes.Unavailable); status.Code(u.err) != codes.Unavailable || u.replayed() {
				t.Fatalf("UNAVAILABLE: %v, replayed=%v", u.err, u.replayed())
			}
		}
		if got := gr.app.unary.Load(); got != 2 {
			t.Fatalf("app executed %d calls, want 2", got)
		}
	})
}

// The app cannot be reached: it never got the call, so the key is released.
func TestGRPCIdempotency_DialFailureReleases(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	gr := startGRPCIdemRig(t, closedAddr(t), nil, IdempotencySettings{Clock: clock}, nil)
	for i := range 2 {
		u := gr.unary(withKey(t.Context(), "dial-1"), &testgrpc.SimpleRequest{})
		if status.Code(u.err) != codes.Unavailable || u.replayed() {
			t.Fatalf("call %d: %v, replayed=%v", i, u.err, u.replayed())
		}
	}
	gr.wantCounts(map[idemOutcome]int{outcomeReleased: 2})
}

// An open breaker rejects the call before the app sees it: the key is
// released, and the call executes once the circuit lets it through.
func TestGRPCIdempotency_BreakerOpenReleases(t *testing.T) {
	gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, nil)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	gr.handler.breaker = breaker.New("grpc-app", breaker.Settings{
		ConsecutiveFailures: 1, FailureRatio: -1, OpenTimeout: 10 * time.Second,
		SuccessesToClose: 1, Clock: clock, Rand: func() float64 { return 0.5 },
	}, nil)
	done, err := gr.handler.breaker.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(breaker.Failure)
	ctx := withKey(t.Context(), "open-1")
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
	if u := gr.unary(ctx, req); status.Code(u.err) != codes.Unavailable {
		t.Fatalf("while open: %v, want Unavailable", u.err)
	}
	clock.advance(time.Minute)
	if u := gr.unary(ctx, req); u.err != nil || u.replayed() {
		t.Fatalf("after the open period: %v, replayed=%v; want an execution", u.err, u.replayed())
	}
	if got := gr.app.unary.Load(); got != 1 {
		t.Fatalf("app executed %d calls, want 1", got)
	}
	gr.wantCounts(map[idemOutcome]int{outcomeReleased: 1, outcomeExecuted: 1})
}

func TestGRPCIdempotency_StoreUnavailable(t *testing.T) {
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
	t.Run("required", func(t *testing.T) {
		gr := newGRPCIdemRig(t, nil, IdempotencySettings{Routes: []IdemRoute{{Path: "/*", Mode: IdemRequired}}}, downStore{})
		u := gr.unary(withKey(t.Context(), "down-1"), req)
		if status.Code(u.err) != codes.Unavailable || !strings.Contains(status.Convert(u.err).Message(), "store is unavailable") {
			t.Fatalf("required route: %v", u.err)
		}
		if v := u.trailer.Get("grpc-retry-pushback-ms"); len(v) != 1 || v[0] != "1000" {
			t.Errorf("grpc-retry-pushback-ms = %q", v)
		}
		if got := gr.app.unary.Load(); got != 0 {
			t.Fatalf("app executed %d calls, want 0", got)
		}
	})
	t.Run("optional", func(t *testing.T) {
		gr := newGRPCIdemRig(t, nil, IdempotencySettings{}, downStore{})
		for range 2 {
			if u := gr.unary(withKey(t.Context(), "down-1"), req); u.err != nil || string(u.resp.GetPayload().GetBody()) != "x" {
				t.Fatalf("optional route passes through: %v", u.err)
			}
		}
		if got := gr.app.unary.Load(); got != 2 {
			t.Fatalf("app executed %d calls, want 2 (unprotected)", got)
		}
		gr.wantCounts(map[idemOutcome]int{outcomeStoreUnavailable: 2})
	})
}

func TestGRPCProblemCode(t *testing.T) {
	for typ, want := range map[string]codes.Code{
		problemKeyMissing:     codes.InvalidArgument,
		problemKeyInvalid:     codes.InvalidArgument,
		problemKeyRepeated:    codes.InvalidArgument,
		problemBodyUnreadable: codes.InvalidArgument,
		problemInProgress:     codes.Aborted,
		problemMismatch:       codes.FailedPrecondition,
		problemNotReplayable:  codes.FailedPrecondition,
		problemNotUnary:       codes.FailedPrecondition,
		problemTooLarge:       codes.ResourceExhausted,
		problemStore:          codes.Unavailable,
	} {
		if got := grpcProblemCode(proxy.Problem{Type: typ}); got != want {
			t.Errorf("%s: %v, want %v", typ, got, want)
		}
	}
	for code, want := range map[codes.Code]int{
		codes.ResourceExhausted: 429, codes.Unavailable: 503, codes.Internal: 500, codes.Unknown: 500,
		codes.DeadlineExceeded: 504, codes.Aborted: 409, codes.Canceled: 499, codes.Code(99): 500,
	} {
		if got := proxy.GRPCToHTTPStatus(code); got != want {
			t.Errorf("HTTP counterpart of %v: %d, want %d", code, got, want)
		}
	}
}

// hasSpanEvent reports whether an ended span of r has event name with the
// key hash.
func hasSpanEvent(r *rig, name, keyHash string) bool {
	ir := &idemRig{rig: r}
	return ir.hasEvent(name, keyHash)
}
