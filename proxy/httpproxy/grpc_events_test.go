package httpproxy

import (
	"io"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"
)

// messageEvent is one "message" span event as the tests compare it.
type messageEvent struct {
	typ        string
	id         int64
	size       int64
	compressed bool
}

// spanMessageEvents returns span's "message" events in order, failing on one
// that lacks an attribute.
func spanMessageEvents(t *testing.T, span sdktrace.ReadOnlySpan) []messageEvent {
	t.Helper()
	var out []messageEvent
	for _, e := range span.Events() {
		if e.Name != "message" {
			continue
		}
		var m messageEvent
		seen := 0
		for _, kv := range e.Attributes {
			switch kv.Key {
			case "rpc.message.type":
				m.typ = kv.Value.AsString()
				seen++
			case "rpc.message.id":
				m.id = kv.Value.AsInt64()
				seen++
			case "rpc.message.uncompressed_size":
				m.size = kv.Value.AsInt64()
				seen++
			case "rpc.message.compressed_size":
				m.size, m.compressed = kv.Value.AsInt64(), true
				seen++
			}
		}
		if seen != 3 {
			t.Fatalf("event %v lacks an rpc.message attribute", e.Attributes)
		}
		out = append(out, m)
	}
	return out
}

func byType(events []messageEvent, typ string) []messageEvent {
	var out []messageEvent
	for _, e := range events {
		if e.typ == typ {
			out = append(out, e)
		}
	}
	return out
}

func TestGRPCMessageEventsServerStreaming(t *testing.T) {
	r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	sizes := []int32{1, 0, 300, 70000, 9}
	req := &testgrpc.StreamingOutputCallRequest{}
	for _, s := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: s})
	}
	stream, err := client.StreamingOutputCall(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sizes {
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last message: %v", err)
	}
	span := r.onlySpan()
	events := spanMessageEvents(t, span)
	received, sent := byType(events, "RECEIVED"), byType(events, "SENT")
	if len(received) != 1 || len(sent) != len(sizes) || len(events) != 1+len(sizes) {
		t.Fatalf("events %+v, want 1 RECEIVED and %d SENT", events, len(sizes))
	}
	if want := (messageEvent{"RECEIVED", 1, int64(proto.Size(req)), false}); received[0] != want {
		t.Errorf("received %+v, want %+v", received[0], want)
	}
	for i, s := range sizes {
		msg := &testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: pattern(int(s), i)}}
		if want := (messageEvent{"SENT", int64(i + 1), int64(proto.Size(msg)), false}); sent[i] != want {
			t.Errorf("sent %d: %+v, want %+v", i, sent[i], want)
		}
	}
	for _, kv := range span.Attributes() {
		if kv.Key == attrMessageEventsDropped {
			t.Errorf("%s = %v under the cap", kv.Key, kv.Value.AsInt64())
		}
	}
}

func TestGRPCMessageEventsCapped(t *testing.T) {
	r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()), func(s *Settings) { s.GRPCMessageEvents = 2 })
	stream, err := client.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		body := pattern(10*i, i)
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(resp.GetPayload().GetBody()) != string(body) {
			t.Fatalf("message %d: echo differs", i)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v", err)
	}
	span := r.onlySpan()
	events := spanMessageEvents(t, span)
	for _, typ := range []string{"RECEIVED", "SENT"} {
		got := byType(events, typ)
		if len(got) != 2 || got[0].id != 1 || got[1].id != 2 {
			t.Errorf("%s events %+v, want ids 1 and 2", typ, got)
		}
	}
	if got := attr(t, span, string(attrMessageEventsDropped)).AsInt64(); got != 2*(n-2) {
		t.Errorf("%s = %d, want %d", attrMessageEventsDropped, got, 2*(n-2))
	}
}

func TestGRPCMessageEventsCompressedAndOff(t *testing.T) {
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: make([]byte, 4096)}}

	r, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()))
	if _, err := client.UnaryCall(t.Context(), req, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatal(err)
	}
	events := spanMessageEvents(t, r.onlySpan())
	if len(events) != 2 {
		t.Fatalf("unary call: events %+v, want 2", events)
	}
	for _, e := range events {
		// 4096 zero bytes compress to far less: the size is the wire's.
		if !e.compressed || e.size <= 0 || e.size >= 4096 || e.id != 1 {
			t.Errorf("event %+v, want a compressed size below 4096 and id 1", e)
		}
	}

	off, client, _ := newGRPCRig(t, startGRPCApp(t, newGRPCApp()), func(s *Settings) { s.GRPCMessageEvents = -1 })
	if _, err := client.UnaryCall(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(off.onlySpan().Events()); n != 0 {
		t.Errorf("message events off: span has %d events", n)
	}
}
