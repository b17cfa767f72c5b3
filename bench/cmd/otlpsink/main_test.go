package main

import (
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestCountSpans(t *testing.T) {
	spans := func(n int) []*tracepb.Span {
		s := make([]*tracepb.Span, n)
		for i := range s {
			s[i] = &tracepb.Span{Name: "GET", TraceId: make([]byte, 16), SpanId: make([]byte, 8)}
		}
		return s
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(3)}, {Spans: spans(2)}}, SchemaUrl: "x"},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans(4)}}},
	}}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := countSpans(raw); err != nil || n != 9 {
		t.Fatalf("countSpans = %d, %v; want 9", n, err)
	}
	if _, err := countSpans(raw[:len(raw)-3]); err == nil {
		t.Fatal("a truncated request was counted without error")
	}
}

// FuzzCountSpans: any bytes give a count or an error, never a panic, and a
// count never exceeds what the bytes could hold.
func FuzzCountSpans(f *testing.F) {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "a"}, {}}}}},
	}}
	raw, err := proto.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := countSpans(b)
		if err == nil && n > int64(len(b)) {
			t.Fatalf("%d spans in %d bytes", n, len(b))
		}
	})
}
