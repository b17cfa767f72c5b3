package telemetry

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// exporter is an OTLP span exporter that encodes spans itself (encode.go)
// and sends them with the OTLP exporter's own client (otlptracehttp or
// otlptracegrpc NewClient), so endpoint, headers, TLS, compression, timeout
// and retries stay exactly the OTLP exporter's.
//
// The client takes generated messages; each ResourceSpans handed to it is
// an empty message whose unknown fields hold the encoded content. Protobuf
// keeps unknown fields and writes them back verbatim when it marshals the
// request, so the bytes on the wire are those of a fully built message.
type exporter struct {
	client otlptrace.Client

	// exportMu keeps exports one at a time: they share the buffers. The SDK
	// never exports concurrently, so it is never contended in practice.
	// Shutdown does not take it: an export stuck in its retries must not
	// hold up the shutdown, whose context bounds the client's Stop.
	exportMu sync.Mutex
	stopped  atomic.Bool
	groups   []spanGroup // reused between exports
	buf      []byte      // the encoded ResourceSpans, reused between exports
}

// spanGroup is the spans of one resource and scope, in arrival order.
type spanGroup struct {
	res   attribute.Distinct
	r     *resource.Resource
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

// newOTLPExporter starts client and returns the exporter sending through it.
func newOTLPExporter(ctx context.Context, client otlptrace.Client) (*exporter, error) {
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &exporter{client: client}, nil
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	if e.stopped.Load() {
		return nil
	}
	e.exportMu.Lock()
	defer e.exportMu.Unlock()
	rss := e.encode(spans)
	return e.client.UploadTraces(ctx, rss)
}

// encode groups spans by resource, then scope, as the OTLP exporter does,
// and returns one ResourceSpans per resource.
func (e *exporter) encode(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	groups := e.groups[:0]
	for _, sd := range spans {
		if sd == nil {
			continue
		}
		res, scope := sd.Resource().Equivalent(), sd.InstrumentationScope()
		i := 0
		for ; i < len(groups); i++ {
			if groups[i].res == res && groups[i].scope == scope {
				break
			}
		}
		if i == len(groups) {
			if i < cap(groups) {
				groups = groups[:i+1]
				groups[i].spans = groups[i].spans[:0]
			} else {
				groups = append(groups, spanGroup{})
			}
			groups[i].res, groups[i].r, groups[i].scope = res, sd.Resource(), scope
		}
		groups[i].spans = append(groups[i].spans, sd)
	}

	// Every ResourceSpans is encoded into one buffer; each message gets its
	// part once the buffer stops growing.
	b := e.buf[:0]
	var bounds []int
	done := make([]bool, len(groups))
	for i := range groups {
		if done[i] {
			continue
		}
		start := len(b)
		b = appendResource(b, groups[i].r)
		for j := i; j < len(groups); j++ {
			if done[j] || groups[j].res != groups[i].res {
				continue
			}
			done[j] = true
			var s int
			b, s = openMessage(b, rsScopeSpans)
			b = appendScope(b, groups[j].scope)
			for _, sd := range groups[j].spans {
				b = appendSpan(b, ssSpans, sd)
			}
			b = appendString(b, ssSchemaURL, groups[j].scope.SchemaURL)
			b = closeMessage(b, s)
		}
		b = appendString(b, rsSchemaURL, groups[i].r.SchemaURL())
		bounds = append(bounds, start, len(b))
	}
	e.buf = b
	rss := make([]*tracepb.ResourceSpans, 0, len(bounds)/2)
	for k := 0; k < len(bounds); k += 2 {
		rs := new(tracepb.ResourceSpans)
		// The client marshals the request, copying these bytes, before
		// UploadTraces returns; the buffer is reused only by the next export.
		rs.ProtoReflect().SetUnknown(b[bounds[k]:bounds[k+1]:bounds[k+1]])
		rss = append(rss, rs)
	}
	for i := range groups {
		clear(groups[i].spans) // release the spans to the collector of garbage
	}
	e.groups = groups
	return rss
}

// Shutdown implements sdktrace.SpanExporter.
func (e *exporter) Shutdown(ctx context.Context) error {
	if e.stopped.Swap(true) {
		return nil
	}
	return e.client.Stop(ctx)
}
