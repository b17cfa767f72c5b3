// Command otlpsink is the OTLP/HTTP receiver of tracecar's benchmark: it
// accepts trace exports (protobuf, optionally gzip), counts their spans and
// discards them. GET /stats reports the counts as JSON.
package main

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tracecar/tracecar/bench/internal/serve"
)

// maxExport bounds one export request's body, compressed or not.
const maxExport = 64 << 20

// sink counts what it received.
type sink struct {
	requests, spans, bad atomic.Int64
}

// Stats is the body of GET /stats.
type Stats struct {
	Requests int64 `json:"requests"`
	Spans    int64 `json:"spans"`
	Bad      int64 `json:"bad"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatalf("otlpsink: %v", err)
	}
}

func run(addr string) error {
	s := &sink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.traces)
	mux.HandleFunc("GET /stats", s.stats)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return serve.Run(addr, srv)
}

func (s *sink) traces(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxExport)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.fail(w, err)
			return
		}
		defer func() { _ = zr.Close() }()
		body = io.LimitReader(zr, maxExport)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	n, err := countSpans(raw)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.spans.Add(n)
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *sink) fail(w http.ResponseWriter, err error) {
	s.bad.Add(1)
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (s *sink) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Stats{Requests: s.requests.Load(), Spans: s.spans.Load(), Bad: s.bad.Load()})
}

// Field numbers on the way to the spans of an ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1, trace/v1).
const (
	fieldResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    = 2 // ResourceSpans.scope_spans
	fieldSpans         = 2 // ScopeSpans.spans
)

// countSpans counts the spans of an encoded ExportTraceServiceRequest by
// walking the wire format, without decoding the spans: the sink shares a
// core with the load generator and backend, and must cost them little.
func countSpans(b []byte) (int64, error) {
	var n int64
	err := eachField(b, fieldResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldSpans, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachField calls fn with the bytes of every length-delimited field num of
// the message b, skipping the others.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}
