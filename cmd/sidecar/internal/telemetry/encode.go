package telemetry

import (
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The OTLP trace messages are written straight from the SDK's read-only
// spans in protobuf's wire format (opentelemetry/proto trace/v1,
// common/v1, resource/v1), with the same content as the OTLP exporter's
// own conversion (otlptrace/internal/tracetransform), but without building
// a tree of generated message structs first: that conversion allocates
// three objects per attribute and was most of the cost of tracing a
// request. Field numbers below are those of the .proto files.

// ResourceSpans.
const (
	rsResource   protowire.Number = 1
	rsScopeSpans protowire.Number = 2
	rsSchemaURL  protowire.Number = 3
)

// Resource and InstrumentationScope.
const (
	resAttributes   protowire.Number = 1
	scopeName       protowire.Number = 1
	scopeVersion    protowire.Number = 2
	scopeAttributes protowire.Number = 3
)

// ScopeSpans.
const (
	ssScope     protowire.Number = 1
	ssSpans     protowire.Number = 2
	ssSchemaURL protowire.Number = 3
)

// Span.
const (
	spanTraceID       protowire.Number = 1
	spanSpanID        protowire.Number = 2
	spanTraceState    protowire.Number = 3
	spanParentSpanID  protowire.Number = 4
	spanName          protowire.Number = 5
	spanKind          protowire.Number = 6
	spanStart         protowire.Number = 7
	spanEnd           protowire.Number = 8
	spanAttributes    protowire.Number = 9
	spanDroppedAttrs  protowire.Number = 10
	spanEvents        protowire.Number = 11
	spanDroppedEvents protowire.Number = 12
	spanLinks         protowire.Number = 13
	spanDroppedLinks  protowire.Number = 14
	spanStatus        protowire.Number = 15
	spanFlags         protowire.Number = 16
	eventTime         protowire.Number = 1
	eventName         protowire.Number = 2
	eventAttributes   protowire.Number = 3
	eventDroppedAttrs protowire.Number = 4
	linkTraceID       protowire.Number = 1
	linkSpanID        protowire.Number = 2
	linkAttributes    protowire.Number = 4
	linkDroppedAttrs  protowire.Number = 5
	linkFlags         protowire.Number = 6
	statusMessage     protowire.Number = 2
	statusCode        protowire.Number = 3
	kvKey             protowire.Number = 1
	kvValue           protowire.Number = 2
	anyString         protowire.Number = 1
	anyBool           protowire.Number = 2
	anyInt            protowire.Number = 3
	anyDouble         protowire.Number = 4
	anyArray          protowire.Number = 5
	anyKvlist         protowire.Number = 6
	anyBytes          protowire.Number = 7
	arrayValues       protowire.Number = 1
	kvlistValues      protowire.Number = 1
	flagHasIsRemote                    = 0x100 // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
	flagIsRemote                       = 0x200 // SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
	statusUnset                        = 0
	statusOK                           = 1
	statusError                        = 2
)

// openMessage starts a length-delimited field num of b; closeMessage ends
// it once its content is appended, inserting the length before it.
func openMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return b, len(b)
}

func closeMessage(b []byte, start int) []byte {
	n := len(b) - start
	sz := protowire.SizeVarint(uint64(n)) // #nosec G115 -- a length, not negative
	for range sz {
		b = append(b, 0)
	}
	copy(b[start+sz:], b[start:start+n])
	protowire.AppendVarint(b[:start], uint64(n)) // #nosec G115 -- a length, not negative
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b // proto3: an empty string is not encoded
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func appendID(b []byte, num protowire.Number, id []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, id)
}

func clampUint32(v int) uint64 {
	return uint64(min(max(v, 0), math.MaxUint32)) // #nosec G115 -- clamped
}

func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano())) // #nosec G115 -- not negative
}

// appendKeyValues appends attrs as repeated KeyValue field num.
func appendKeyValues(b []byte, num protowire.Number, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		b = appendKeyValue(b, num, kv)
	}
	return b
}

func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	b, start := openMessage(b, num)
	b = appendString(b, kvKey, string(kv.Key))
	b = appendAnyValue(b, kvValue, kv.Value)
	return closeMessage(b, start)
}

// appendAnyValue appends v as AnyValue field num. A oneof member is
// encoded even when it holds its type's zero value.
func appendAnyValue(b []byte, num protowire.Number, v attribute.Value) []byte {
	b, start := openMessage(b, num)
	switch v.Type() {
	case attribute.BOOL:
		b = appendBool(b, v.AsBool())
	case attribute.INT64:
		b = appendInt(b, v.AsInt64())
	case attribute.FLOAT64:
		b = appendDouble(b, v.AsFloat64())
	case attribute.STRING:
		b = appendStringValue(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, anyBytes, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		b = appendArray(b, v.AsBoolSlice(), appendBool)
	case attribute.INT64SLICE:
		b = appendArray(b, v.AsInt64Slice(), appendInt)
	case attribute.FLOAT64SLICE:
		b = appendArray(b, v.AsFloat64Slice(), appendDouble)
	case attribute.STRINGSLICE:
		b = appendArray(b, v.AsStringSlice(), appendStringValue)
	case attribute.SLICE:
		var s int
		b, s = openMessage(b, anyArray)
		for _, e := range v.AsSlice() {
			b = appendAnyValue(b, arrayValues, e)
		}
		b = closeMessage(b, s)
	case attribute.MAP:
		var s int
		b, s = openMessage(b, anyKvlist)
		b = appendKeyValues(b, kvlistValues, v.AsMap())
		b = closeMessage(b, s)
	case attribute.EMPTY:
		// An AnyValue with no member set.
	default:
		b = appendStringValue(b, "INVALID")
	}
	return closeMessage(b, start)
}

// appendArray appends an ArrayValue of scalars, each an AnyValue message
// whose member elem appends.
func appendArray[T any](b []byte, vals []T, elem func([]byte, T) []byte) []byte {
	b, start := openMessage(b, anyArray)
	for _, v := range vals {
		var s int
		b, s = openMessage(b, arrayValues)
		b = elem(b, v)
		b = closeMessage(b, s)
	}
	return closeMessage(b, start)
}

func appendBool(b []byte, v bool) []byte {
	b = protowire.AppendTag(b, anyBool, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

func appendInt(b []byte, v int64) []byte {
	b = protowire.AppendTag(b, anyInt, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v)) // #nosec G115 -- int64 is two's complement on the wire
}

func appendDouble(b []byte, v float64) []byte {
	b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendStringValue(b []byte, v string) []byte {
	b = protowire.AppendTag(b, anyString, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// appendResource appends r as ResourceSpans.resource.
func appendResource(b []byte, r *resource.Resource) []byte {
	if r == nil {
		return b
	}
	b, start := openMessage(b, rsResource)
	for iter := r.Iter(); iter.Next(); {
		b = appendKeyValue(b, resAttributes, iter.Attribute())
	}
	return closeMessage(b, start)
}

// appendScope appends s as ScopeSpans.scope; the zero scope is left out.
func appendScope(b []byte, s instrumentation.Scope) []byte {
	if s == (instrumentation.Scope{}) {
		return b
	}
	b, start := openMessage(b, ssScope)
	b = appendString(b, scopeName, s.Name)
	b = appendString(b, scopeVersion, s.Version)
	for iter := s.Attributes.Iter(); iter.Next(); {
		b = appendKeyValue(b, scopeAttributes, iter.Attribute())
	}
	return closeMessage(b, start)
}

// otlpFlags are the W3C trace flags, with the bits saying whether the
// parent is remote.
func otlpFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if parent.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

// appendSpan appends sd as a Span field num.
func appendSpan(b []byte, num protowire.Number, sd sdktrace.ReadOnlySpan) []byte {
	b, start := openMessage(b, num)
	sc := sd.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendID(b, spanTraceID, tid[:])
	b = appendID(b, spanSpanID, sid[:])
	if ts := sc.TraceState(); ts.Len() > 0 {
		b = appendString(b, spanTraceState, ts.String())
	}
	parent := sd.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendID(b, spanParentSpanID, psid[:])
	}
	b = appendString(b, spanName, sd.Name())
	b = appendUint(b, spanKind, otlpKind(sd.SpanKind()))
	b = appendFixed64(b, spanStart, unixNano(sd.StartTime()))
	b = appendFixed64(b, spanEnd, unixNano(sd.EndTime()))
	b = appendKeyValues(b, spanAttributes, sd.Attributes())
	b = appendUint(b, spanDroppedAttrs, clampUint32(sd.DroppedAttributes()))
	for _, e := range sd.Events() {
		var s int
		b, s = openMessage(b, spanEvents)
		b = appendFixed64(b, eventTime, unixNano(e.Time))
		b = appendString(b, eventName, e.Name)
		b = appendKeyValues(b, eventAttributes, e.Attributes)
		b = appendUint(b, eventDroppedAttrs, clampUint32(e.DroppedAttributeCount))
		b = closeMessage(b, s)
	}
	b = appendUint(b, spanDroppedEvents, clampUint32(sd.DroppedEvents()))
	for _, l := range sd.Links() {
		var s int
		b, s = openMessage(b, spanLinks)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendID(b, linkTraceID, ltid[:])
		b = appendID(b, linkSpanID, lsid[:])
		b = appendKeyValues(b, linkAttributes, l.Attributes)
		b = appendUint(b, linkDroppedAttrs, clampUint32(l.DroppedAttributeCount))
		b = appendFixed32(b, linkFlags, otlpFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		b = closeMessage(b, s)
	}
	b = appendUint(b, spanDroppedLinks, clampUint32(sd.DroppedLinks()))
	// The status is always present, as the OTLP exporter sends it.
	var s int
	b, s = openMessage(b, spanStatus)
	st := sd.Status()
	b = appendString(b, statusMessage, st.Description)
	b = appendUint(b, statusCode, otlpStatus(st.Code))
	b = closeMessage(b, s)
	b = appendFixed32(b, spanFlags, otlpFlags(sc.TraceFlags(), parent))
	return closeMessage(b, start)
}

func otlpStatus(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return statusOK
	case codes.Error:
		return statusError
	default:
		return statusUnset
	}
}

// otlpKind maps the span kind to Span.SpanKind.
func otlpKind(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	default:
		return 0 // SPAN_KIND_UNSPECIFIED
	}
}
