package httpproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
)

// A gRPC call's SERVER span gets one event per message, as otelgrpc's stats
// handler records them. Semantic conventions v1.43.0 define no message event:
// the rpc.message.* attributes were removed in v1.40.0. tracecar keeps the
// names of the last conventions that defined them (v1.39.0, gRPC events):
// event "message" with rpc.message.type SENT or RECEIVED, rpc.message.id
// counting each direction's messages from 1, and the message's size as
// rpc.message.uncompressed_size, or rpc.message.compressed_size when its
// Compressed-Flag is set (the uncompressed size of a compressed message is
// not on the wire).
const eventMessage = "message"

var (
	attrMessageType             = attribute.Key("rpc.message.type")
	attrMessageID               = attribute.Key("rpc.message.id")
	attrMessageCompressedSize   = attribute.Key("rpc.message.compressed_size")
	attrMessageUncompressedSize = attribute.Key("rpc.message.uncompressed_size")
	// attrMessageEventsDropped counts the messages, both directions
	// together, beyond Settings.GRPCMessageEvents that got no event.
	attrMessageEventsDropped = attribute.Key("tracecar.grpc.message_events_dropped")

	messageSent     = attrMessageType.String("SENT")
	messageReceived = attrMessageType.String("RECEIVED")
)

// grpcMessagesKey finds a call's grpcMessages in the context of the request
// sent to the app, for the response side.
type grpcMessagesKey struct{}

// grpcMessages records the message events of one gRPC call. From the server
// span's point of view the request body (client to app) carries RECEIVED
// messages and the response body (app to client) SENT ones.
type grpcMessages struct {
	received, sent messageEvents
	// tooLarge is set, from the request body's reader, when a request
	// message exceeded Settings.GRPCMaxRecvMessageBytes.
	tooLarge atomic.Pointer[messageTooLargeError]
}

// messageEvents follows one direction. Each body is read by one goroutine
// (the two by different ones); only dropped is read from another, when the
// span ends.
type messageEvents struct {
	span    trace.Span
	typ     attribute.KeyValue
	limit   int64
	frames  proxy.GRPCFrames
	dropped atomic.Int64
	add     func(proxy.GRPCMessage) // e.record, bound once
}

func (e *messageEvents) init(span trace.Span, typ attribute.KeyValue, limit int) {
	e.span, e.typ, e.limit = span, typ, int64(limit)
	e.add = e.record
}

func (e *messageEvents) record(m proxy.GRPCMessage) {
	if m.Index > e.limit {
		e.dropped.Add(1)
		return
	}
	size := attrMessageUncompressedSize.Int64(int64(m.Length))
	if m.Compressed {
		size = attrMessageCompressedSize.Int64(int64(m.Length))
	}
	// span.AddEvent is safe for concurrent use (trace.Span); after the span
	// ends it records nothing.
	e.span.AddEvent(eventMessage, trace.WithAttributes(e.typ, attrMessageID.Int64(m.Index), size))
}

func (m *grpcMessages) dropped() int64 {
	return m.received.dropped.Load() + m.sent.dropped.Load()
}

// grpcBodies follows the messages of the gRPC call r, when anything needs
// them: message events (at most Settings.GRPCMessageEvents per direction,
// on a recording span) and the request message limit
// (Settings.GRPCMaxRecvMessageBytes). It wraps the request body and returns
// r with the context modifyResponse finds the events in. Only gRPC calls pay
// for it.
func (h *Handler) grpcBodies(r *http.Request, rw *responseWriter, span trace.Span) *http.Request {
	events := h.settings.GRPCMessageEvents > 0 && span.IsRecording()
	limit := h.settings.GRPCMaxRecvMessageBytes
	if !events && limit == 0 {
		return r
	}
	m := new(grpcMessages)
	m.received.init(span, messageReceived, h.settings.GRPCMessageEvents)
	m.received.frames.Max = limit
	if !events {
		m.received.add = ignoreMessage
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &messageBody{ReadCloser: r.Body, ev: &m.received, limit: m}
	}
	rw.msgs = m
	if !events {
		return r
	}
	m.sent.init(span, messageSent, h.settings.GRPCMessageEvents)
	return r.WithContext(context.WithValue(r.Context(), grpcMessagesKey{}, m))
}

func ignoreMessage(proxy.GRPCMessage) {}

// messageBody passes a gRPC body through unchanged, recording an event per
// message. A body that is not a sequence of gRPC messages still passes; its
// events stop at the first malformed prefix. A limited body fails instead
// of passing a message longer than its parser's Max: none of the chunk that
// announces it is passed on, and the call ends.
type messageBody struct {
	io.ReadCloser
	ev    *messageEvents
	limit *grpcMessages // nil: not limited; else where a failure is noted
}

func (b *messageBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		// A malformed stream is the peers' to reject; the bytes pass.
		if ferr := b.ev.frames.Feed(p[:n], b.ev.add); ferr != nil && b.limit != nil &&
			errors.Is(ferr, proxy.ErrGRPCFrameTooLarge) {
			e := &messageTooLargeError{err: ferr}
			b.limit.tooLarge.CompareAndSwap(nil, e)
			return 0, e
		}
	}
	return n, err
}

// messageTooLargeError is a request message over
// Settings.GRPCMaxRecvMessageBytes. It is a proxy.ErrBodyTooLarge, which
// proxy.GRPCCode answers with RESOURCE_EXHAUSTED.
type messageTooLargeError struct{ err error }

func (e *messageTooLargeError) Error() string {
	return "grpc: received message larger than max: " + e.err.Error()
}

func (e *messageTooLargeError) Unwrap() []error { return []error{proxy.ErrBodyTooLarge, e.err} }
