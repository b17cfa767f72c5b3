package httpproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy"
)

// gRPC calls through the Idempotency-Key middleware. A call carrying
// idempotency-key metadata (the HTTP/2 field Idempotency-Key, parsed as
// for HTTP) on a protected route (routes match method POST and the path
// /pkg.Service/Method, so the default "POST and PATCH optional" covers
// every gRPC method) is executed once per scope, with the same principal,
// fingerprint (the request's length-prefixed messages are its body) and
// store as an HTTP request. What differs:
//
//   - Only unary calls are protected. The request must be one message
//     followed by the end of the stream; a second message, or a stream left
//     open after the first, gets FAILED_PRECONDITION and is not forwarded.
//   - A replay repeats the response headers (metadata), the message bytes
//     and the trailers (grpc-status, grpc-message, custom and -bin
//     metadata), with idempotent-replayed: true. A Trailers-Only answer is
//     replayed as Trailers-Only. A response of more than one message
//     (server streaming) is recorded as not replayable.
//   - The middleware's own answers are gRPC statuses (grpcProblemCode).
//   - The app's status is an outcome and is replayed, errors included,
//     unless its HTTP counterpart (proxy.GRPCToHTTPStatus) is one of
//     IdempotencySettings.ReleaseStatuses: by default 429, so
//     RESOURCE_EXHAUSTED releases the key; adding 503 releases on
//     UNAVAILABLE.

// problemNotUnary is the problem type of a streaming request with a key.
const problemNotUnary = "https://tracecar.dev/problems/idempotency-key-unary-only"

// headerGRPCRetryPushback tells a gRPC client when to retry: gRPC has no
// Retry-After, and grpc-go's retry (gRFC A6) waits this many milliseconds
// before its next attempt.
const headerGRPCRetryPushback = "Grpc-Retry-Pushback-Ms"

// grpcHalfCloseWait is how long the end of the request stream may lag its
// first message. A unary client ends the stream with the message (grpc-go
// sets END_STREAM on its last DATA frame; others send an empty one right
// after); a streaming client that waits for an answer first would
// otherwise hold the call until its deadline.
const grpcHalfCloseWait = time.Second

// grpcPrefixLen is the size of a message's Compressed-Flag and
// Message-Length (PROTOCOL-HTTP2.md: Length-Prefixed-Message).
const grpcPrefixLen = 5

// readGRPCBody buffers the request of a gRPC call to fingerprint it: one
// length-prefixed message, within the idempotency body cap and
// Settings.GRPCMaxRecvMessageBytes. A call that streams its request is
// answered FAILED_PRECONDITION; nothing reaches the app.
func (x *idempotency) readGRPCBody(rw *responseWriter, r *http.Request, span trace.Span) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > x.maxBody {
		x.tooLarge(rw, r, span)
		return nil, false
	}
	var (
		buf   bytes.Buffer
		end   = int64(-1) // where the first message ends, once its prefix is in
		armed bool        // the half-close wait is running
		pool  proxy.BufferPool
	)
	chunk := pool.Get()
	defer pool.Put(chunk)
	rc := http.NewResponseController(rw)
	defer func() {
		if armed {
			_ = rc.SetReadDeadline(time.Time{}) // the body is done with either way
		}
	}()
	for {
		n, err := r.Body.Read(chunk)
		if end < 0 && buf.Len()+n >= grpcPrefixLen {
			// The first message's prefix is in: its length is checked
			// before its bytes are buffered.
			var prefix [grpcPrefixLen]byte
			copy(prefix[copy(prefix[:], buf.Bytes()):], chunk[:n])
			length := binary.BigEndian.Uint32(prefix[1:])
			if limit := x.h.settings.GRPCMaxRecvMessageBytes; limit > 0 && length > limit {
				x.done(span, outcomeTooLarge)
				x.h.errorHandler(rw, r, &messageTooLargeError{
					err: fmt.Errorf("%w: %d bytes, limit %d", proxy.ErrGRPCFrameTooLarge, length, limit),
				})
				return nil, false
			}
			if end = grpcPrefixLen + int64(length); end > x.maxBody {
				x.tooLarge(rw, r, span)
				return nil, false
			}
		}
		if int64(buf.Len()+n) > x.maxBody {
			x.tooLarge(rw, r, span)
			return nil, false
		}
		buf.Write(chunk[:n])
		if end >= 0 && int64(buf.Len()) > end {
			x.notUnary(rw, r, span, "a second request message followed the first")
			return nil, false
		}
		switch {
		case errors.Is(err, io.EOF):
			return buf.Bytes(), true
		case err != nil && r.Context().Err() != nil:
			rw.err = proxy.Classify(r.Context(), err) // the client left; nobody to answer
			return nil, false
		case err != nil && armed && errors.Is(err, os.ErrDeadlineExceeded):
			x.notUnary(rw, r, span, fmt.Sprintf("the request stream stayed open for %s after its first message", grpcHalfCloseWait))
			return nil, false
		case err != nil:
			x.writeProblem(rw, r, proxy.Problem{
				Type: problemBodyUnreadable, Status: http.StatusBadRequest,
				Detail: "the request messages could not be read (" + err.Error() + ")",
			})
			return nil, false
		}
		if !armed && int64(buf.Len()) == end {
			armed = rc.SetReadDeadline(time.Now().Add(grpcHalfCloseWait)) == nil
		}
	}
}

// notUnary answers a call that streams its request: a key protects one
// execution of one request, and a stream's later messages could not be
// fingerprinted before the app acts on the first.
func (x *idempotency) notUnary(rw *responseWriter, r *http.Request, span trace.Span, why string) {
	x.done(span, outcomeNotUnary)
	x.writeProblem(rw, r, proxy.Problem{
		Type: problemNotUnary, Status: http.StatusBadRequest,
		Detail: "idempotency-key applies to unary calls: " + why +
			"; the call was not forwarded; send streaming calls without an idempotency-key",
	})
}

// writeGRPCProblem ends a gRPC call with the status grpcProblemCode gives
// p, as a Trailers-Only response. A delay to wait before retrying goes in
// grpc-retry-pushback-ms.
func writeGRPCProblem(w http.ResponseWriter, p proxy.Problem) {
	if p.RetryAfter > 0 {
		w.Header().Set(headerGRPCRetryPushback, strconv.FormatInt(p.RetryAfter.Milliseconds(), 10))
	}
	proxy.WriteGRPCError(w, grpcProblemCode(p), "tracecar: "+p.Detail)
}

// replayGRPC writes a recorded gRPC response: its headers (metadata), the
// message bytes and its trailers, with idempotent-replayed: true. A
// Trailers-Only response (grpc-status among the headers, no body) goes out
// as one HEADERS frame again.
func (x *idempotency) replayGRPC(rw *responseWriter, resp *dedupe.Response) {
	h := rw.Header()
	x.copyReplayHeaders(h, resp.Header, false)
	h.Set(headerReplayed, "true")
	for k, vv := range resp.Trailer {
		ck := http.CanonicalHeaderKey(k)
		if _, hop := hopByHop[ck]; hop {
			continue
		}
		h[http.TrailerPrefix+ck] = slices.Clone(vv)
	}
	rw.WriteHeader(resp.Status)
	if len(resp.Body) == 0 && len(resp.Trailer) == 0 {
		return // Trailers-Only, or nothing at all: one HEADERS frame
	}
	// The headers go out first, as the app's did: a gRPC response carries
	// no Content-Length, which net/http would add for a body it sees whole.
	rw.Flush()
	if len(resp.Body) > 0 {
		_, _ = rw.Write(resp.Body) // the client may be gone; nothing more to do
	}
}

// grpcExchange is the gRPC part of an exchange whose app answered HTTP 200:
// the response's messages are counted as they pass, and its trailers are
// read once the body ends.
type grpcExchange struct {
	res      *http.Response // its Trailer is filled in when the body ends
	frames   proxy.GRPCFrames
	messages int64
	count    func(proxy.GRPCMessage) // g.counted, bound once
	trailer  http.Header
}

func (g *grpcExchange) counted(m proxy.GRPCMessage) { g.messages = m.Index }

// streaming reports whether the response has gone past one message with
// p, its next bytes. A body that is not a sequence of gRPC messages is the
// client's to reject; it is recorded as it passed.
func (g *grpcExchange) streaming(p []byte) bool {
	_ = g.frames.Feed(p, g.count)
	return g.messages > 1
}

// onGRPCResponse decides what a gRPC answer's headers can: a Trailers-Only
// response is the whole outcome; otherwise the body is followed to its
// trailers.
func (ex *exchange) onGRPCResponse(res *http.Response) {
	ex.status = res.StatusCode
	if v, ok := res.Header[headerGRPCStatus]; ok {
		if code, ok := grpcStatusOf(v); ok && ex.x.releasesGRPC(code) {
			ex.release("the app answered " + proxy.GRPCCodeName(code) + ", a release status")
			ex.detach()
			return
		}
		ex.header = res.Header.Clone()
		ex.complete()
		return
	}
	ex.header = res.Header.Clone()
	g := ex.grpc
	g.res = res
	g.count = g.counted
	res.Body = &teeBody{ReadCloser: res.Body, ex: ex}
}

// endGRPC records the call once its body has ended and its trailers are in
// (the HTTP/2 transport fills in res.Trailer before the body's EOF), or
// releases the key for a release status.
func (ex *exchange) endGRPC() {
	trailer := ex.grpc.res.Trailer
	if code, ok := grpcStatusOf(trailer[headerGRPCStatus]); ok && ex.x.releasesGRPC(code) {
		ex.release("the app answered " + proxy.GRPCCodeName(code) + ", a release status")
		return
	}
	ex.grpc.trailer = trailer.Clone()
	ex.complete()
}

func grpcStatusOf(v []string) (codes.Code, bool) {
	if len(v) != 1 {
		return 0, false
	}
	return proxy.ParseGRPCStatus(v[0])
}

// releasesGRPC reports whether the app's gRPC status means "nothing
// happened, try again": its HTTP counterpart is a release status.
func (x *idempotency) releasesGRPC(code codes.Code) bool {
	if code == codes.OK {
		return false
	}
	_, ok := x.releaseSet[proxy.GRPCToHTTPStatus(code)]
	return ok
}
