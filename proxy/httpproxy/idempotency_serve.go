package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// Header names of the Idempotency-Key protocol.
const (
	headerIdempotencyKey  = "Idempotency-Key"
	headerXIdempotencyKey = "X-Idempotency-Key"
	headerReplayed        = "Idempotent-Replayed"
	headerDate            = "Date"
)

// Problem types of the middleware's own answers (RFC 9457 §3.1.1: a URI
// per problem type).
const (
	problemKeyMissing     = "https://tracecar.dev/problems/idempotency-key-missing"
	problemKeyInvalid     = "https://tracecar.dev/problems/idempotency-key-invalid"
	problemKeyRepeated    = "https://tracecar.dev/problems/idempotency-key-repeated"
	problemInProgress     = "https://tracecar.dev/problems/idempotency-key-in-progress"
	problemMismatch       = "https://tracecar.dev/problems/idempotency-key-mismatch"
	problemNotReplayable  = "https://tracecar.dev/problems/idempotency-response-not-retained"
	problemTooLarge       = "https://tracecar.dev/problems/idempotency-request-too-large"
	problemBodyUnreadable = "https://tracecar.dev/problems/idempotency-request-unreadable"
	problemStore          = "https://tracecar.dev/problems/idempotency-store-unavailable"
)

// Span events and attributes. A key appears only as its KeyHash.
const (
	eventIdemClaim         = "idempotency.claim"
	eventIdemReplay        = "idempotency.replay"
	eventIdemConflict      = "idempotency.conflict"
	eventIdemMismatch      = "idempotency.mismatch"
	eventIdemRelease       = "idempotency.release"
	eventIdemRecord        = "idempotency.record"
	eventIdemStoreDown     = "idempotency.store_unavailable"
	attrIdemKeyHash        = attribute.Key("tracecar.idempotency.key_hash")
	attrIdemOutcome        = attribute.Key("tracecar.idempotency.outcome")
	attrIdemMode           = attribute.Key("tracecar.idempotency.mode")
	attrIdemState          = attribute.Key("tracecar.idempotency.state")
	attrIdemReason         = attribute.Key("tracecar.idempotency.reason")
	attrIdemReplayedStatus = attribute.Key("tracecar.idempotency.replayed_status")
)

// conflictRetryAfter is the Retry-After of a 409 for a key still executing.
const conflictRetryAfter = time.Second

// conflictDetail is the detail of that 409 (or gRPC ABORTED).
var conflictDetail = "a request with this Idempotency-Key is still being processed; retry in " +
	conflictRetryAfter.String() + " to get its response"

// storeOpTimeout bounds one Complete or Release, which run detached from
// the client so that a hang-up does not lose the record.
const storeOpTimeout = 5 * time.Second

// serve runs the Idempotency-Key middleware for one request, HTTP or gRPC
// (grpc_idempotency.go). It returns false when the request is not
// protected (route off, or optional without a key, or the store is down on
// an optional route) and ServeHTTP forwards it as usual; otherwise it has
// answered: a problem (a gRPC status for a gRPC call), a replay, or the
// app's response from the one execution. report receives the breaker's
// report function when an execution was admitted.
func (x *idempotency) serve(rw *responseWriter, r *http.Request, span trace.Span, report *func(breaker.Outcome)) bool {
	rt := x.route(r.Method, r.URL.Path)
	mode := rt.Mode
	if mode == IdemOff {
		return false
	}
	vals := r.Header[headerIdempotencyKey]
	if len(vals) == 0 && mode == IdemOptional {
		return false
	}
	key, err := dedupe.ParseKey(vals)
	if err != nil {
		x.rejectKey(rw, r, span, err)
		return true
	}
	scope := dedupe.Scope{Principal: x.principal(r), Method: rt.Method, Route: rt.Path, Key: key}
	var body []byte
	var ok bool
	if rw.grpc {
		body, ok = x.readGRPCBody(rw, r, span)
	} else {
		body, ok = x.readBody(rw, r, span)
	}
	if !ok {
		return true
	}
	fp := x.fingerprint(r, body)
	claim, rec, err := x.store.Claim(r.Context(), scope, fp, x.s.Lease)
	if err == nil && rec != nil && rec.State == dedupe.StateInProgress && rec.Fingerprint == fp && x.s.Wait > 0 {
		claim, rec, err = x.wait(r.Context(), scope, fp)
	}
	switch {
	case err != nil && r.Context().Err() != nil:
		rw.err = proxy.Classify(r.Context(), err) // the client left; nobody to answer
		return true
	case err != nil:
		return x.storeUnavailable(rw, r, span, scope, mode, body, err)
	case claim != nil:
		x.execute(rw, r, span, report, claim, body)
		return true
	default:
		x.answerExisting(rw, r, span, scope, rec, fp)
		return true
	}
}

// rejectKey answers 400 for a missing, invalid or repeated key. The detail
// says what to fix and never repeats the key.
func (x *idempotency) rejectKey(rw *responseWriter, r *http.Request, span trace.Span, err error) {
	typ, o := problemKeyInvalid, outcomeInvalid
	switch {
	case errors.Is(err, dedupe.ErrKeyMissing):
		typ, o = problemKeyMissing, outcomeMissing
		err = errors.New("this route requires an Idempotency-Key (an HTTP header; idempotency-key metadata on a gRPC call); send one unique key (1 to 255 printable ASCII characters, e.g. a UUID) per operation and reuse it only to retry that operation")
	case errors.Is(err, dedupe.ErrKeyRepeated):
		typ = problemKeyRepeated
	}
	x.done(span, o)
	x.writeProblem(rw, r, proxy.Problem{
		Type: typ, Status: http.StatusBadRequest,
		Detail: strings.TrimPrefix(err.Error(), "dedupe: "),
	})
}

// readBody buffers the request body to fingerprint it, within the cap.
func (x *idempotency) readBody(rw *responseWriter, r *http.Request, span trace.Span) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > x.maxBody {
		x.tooLarge(rw, r, span)
		return nil, false
	}
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 {
		size += r.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	// Chunked bodies (unknown length) are read the same way, up to one byte
	// past the cap to tell "exactly at the cap" from "over it".
	_, err := buf.ReadFrom(io.LimitReader(r.Body, x.maxBody+1))
	switch {
	case err != nil && r.Context().Err() != nil:
		rw.err = proxy.Classify(r.Context(), err)
		return nil, false
	case err != nil:
		x.writeProblem(rw, r, proxy.Problem{
			Type: problemBodyUnreadable, Status: http.StatusBadRequest,
			Detail: "the request body could not be read (" + err.Error() + "); send a well-formed body",
		})
		return nil, false
	case int64(buf.Len()) > x.maxBody:
		x.tooLarge(rw, r, span)
		return nil, false
	}
	return buf.Bytes(), true
}

func (x *idempotency) tooLarge(rw *responseWriter, r *http.Request, span trace.Span) {
	x.done(span, outcomeTooLarge)
	x.writeProblem(rw, r, proxy.Problem{
		Type: problemTooLarge, Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("requests with an Idempotency-Key are buffered to fingerprint them, and this body is over the %d-byte limit; send a smaller body", x.maxBody),
	})
}

// wait polls the store while the key is executing elsewhere, up to
// Settings.Wait, and returns what the last Claim saw: a completed record to
// replay, a claim of its own (the other execution was released), or the
// record still in progress.
func (x *idempotency) wait(ctx context.Context, scope dedupe.Scope, fp dedupe.Fingerprint) (*dedupe.Claim, *dedupe.Record, error) {
	deadline := time.Now().Add(x.s.Wait)
	delay := 5 * time.Millisecond
	for {
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		c, rec, err := x.store.Claim(ctx, scope, fp, x.s.Lease)
		if err != nil || c != nil || rec.State != dedupe.StateInProgress || !time.Now().Before(deadline) {
			return c, rec, err
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// answerExisting answers from the record another request made.
func (x *idempotency) answerExisting(rw *responseWriter, r *http.Request, span trace.Span, scope dedupe.Scope, rec *dedupe.Record, fp dedupe.Fingerprint) {
	switch {
	case rec.Fingerprint != fp:
		// Draft §2.7: a key reused for a different request payload SHOULD
		// get 422 Unprocessable Content.
		x.event(span, eventIdemMismatch, scope, attrIdemState.String(rec.State.String()))
		x.done(span, outcomeMismatch)
		x.writeProblem(rw, r, proxy.Problem{
			Type: problemMismatch, Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was already used for a different request (method, path and query, body or " +
				strings.Join(x.s.FingerprintHeaders, ", ") + " differ); retry with the original request, or use a new key for a new request",
		})
	case rec.State == dedupe.StateInProgress:
		// Draft §2.7: a request whose key is still being processed SHOULD
		// get 409 Conflict.
		x.event(span, eventIdemConflict, scope)
		x.done(span, outcomeConflict)
		x.writeProblem(rw, r, proxy.Problem{
			Type: problemInProgress, Status: http.StatusConflict, RetryAfter: conflictRetryAfter,
			Detail: conflictDetail,
		})
	case rec.State == dedupe.StateNotReplayable:
		x.event(span, eventIdemReplay, scope, attrIdemState.String(rec.State.String()), attrIdemReason.String(rec.Reason))
		x.done(span, outcomeNotReplayable)
		rw.Header().Set(headerReplayed, "true")
		answered := ""
		if !rw.grpc {
			answered = fmt.Sprintf(" (the app answered %d)", rec.Status) // a gRPC call's is always 200
		}
		x.writeProblem(rw, r, proxy.Problem{
			Type: problemNotReplayable, Status: http.StatusConflict,
			Detail: fmt.Sprintf("the request with this Idempotency-Key was executed%s but its response was not retained for replay: %s; it will not be executed again; use a new key for a new request",
				answered, rec.Reason),
		})
	default:
		x.event(span, eventIdemReplay, scope, attrIdemState.String(rec.State.String()), attrIdemReplayedStatus.Int(rec.Response.Status))
		x.done(span, outcomeReplayed)
		x.replay(rw, r, rec.Response)
	}
}

// storeUnavailable fails closed on required routes (503) and open on
// optional ones: the request is forwarded unprotected. Both are counted and
// logged.
func (x *idempotency) storeUnavailable(rw *responseWriter, r *http.Request, span trace.Span, scope dedupe.Scope, mode IdemMode, body []byte, err error) bool {
	x.event(span, eventIdemStoreDown, scope, attrIdemMode.String(mode.String()))
	x.done(span, outcomeStoreUnavailable)
	action := "passed through unprotected"
	if mode == IdemRequired {
		action = "answered 503"
	}
	x.h.log.LogAttrs(r.Context(), slog.LevelWarn, "idempotency store unavailable; request "+action,
		slog.String("idempotency_key_hash", scope.KeyHash()), slog.String("mode", mode.String()),
		slog.String("error", err.Error()))
	if mode == IdemRequired {
		x.writeProblem(rw, r, proxy.Problem{
			Type: problemStore, Status: http.StatusServiceUnavailable, RetryAfter: conflictRetryAfter,
			Detail: "the idempotency store is unavailable, and this route requires an Idempotency-Key to be enforced; retry later with the same key",
		})
		return true
	}
	r.Body, r.ContentLength, r.TransferEncoding = bodyReader(body), int64(len(body)), nil
	return false
}

// replay writes a stored response: its status, end-to-end headers and body
// byte for byte, with Idempotent-Replayed: true, a fresh Date and a
// Content-Length computed from the body.
func (x *idempotency) replay(rw *responseWriter, r *http.Request, resp *dedupe.Response) {
	if rw.grpc {
		x.replayGRPC(rw, resp)
		return
	}
	bodyless := noBody(r.Method, resp.Status)
	h := rw.Header()
	x.copyReplayHeaders(h, resp.Header, bodyless)
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // replay what was recorded: no sniffed type
	}
	h.Set(headerReplayed, "true")
	h.Set(headerDate, x.s.Clock.Now().UTC().Format(http.TimeFormat))
	if !bodyless {
		h.Set(headerContentLength, strconv.Itoa(len(resp.Body)))
	}
	rw.WriteHeader(resp.Status)
	if !bodyless && len(resp.Body) > 0 {
		_, _ = rw.Write(resp.Body) // the client may be gone; nothing more to do
	}
}

// hopByHop are the fields a proxy never forwards (RFC 9110 §7.6.1), plus
// the non-standard ones proxies commonly treat alike.
var hopByHop = map[string]struct{}{
	"Connection": {}, "Proxy-Connection": {}, "Keep-Alive": {}, "Proxy-Authenticate": {},
	"Proxy-Authorization": {}, "Te": {}, "Trailer": {}, "Transfer-Encoding": {}, "Upgrade": {},
}

// copyReplayHeaders copies the stored end-to-end headers into dst. Records
// are stored clean, but one written by another replica or version is not
// trusted: hop-by-hop fields, the fields its Connection header names, Date,
// Content-Length (unless the response has no body by definition, where it
// describes the representation) and the headers tracecar sets per request
// are dropped.
func (x *idempotency) copyReplayHeaders(dst, src map[string][]string, keepLength bool) {
	var named []string
	for _, v := range src["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
	for k, vv := range src {
		ck := http.CanonicalHeaderKey(k)
		if _, hop := hopByHop[ck]; hop || slices.Contains(named, ck) ||
			ck == headerDate || ck == headerReplayed || (ck == headerContentLength && !keepLength) ||
			ck == x.h.settings.Correlation.Header || ck == headerTraceresponse {
			continue
		}
		dst[ck] = slices.Clone(vv)
	}
}

// noBody reports whether a response has no body by definition (RFC 9110
// §6.4.1): to HEAD, 1xx, 204 and 304.
func noBody(method string, status int) bool {
	return method == http.MethodHead || status < 200 || status == http.StatusNoContent || status == http.StatusNotModified
}

func bodyReader(body []byte) io.ReadCloser {
	if len(body) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(body))
}

// writeProblem answers with p, carrying the request's trace and correlation
// IDs; a gRPC call gets p as a gRPC status instead (writeGRPCProblem).
func (x *idempotency) writeProblem(rw *responseWriter, r *http.Request, p proxy.Problem) {
	if rw.grpc {
		writeGRPCProblem(rw, p)
		return
	}
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		p.TraceID = sc.TraceID().String()
	}
	p.CorrelationID = propagation.CorrelationIDFromContext(r.Context())
	proxy.WriteProblem(rw, p)
}

// grpcProblemCode is the gRPC status of each of the middleware's own
// answers, the counterpart of the HTTP statuses above (one place for both):
//
//	400 key missing, invalid or repeated; body unreadable → INVALID_ARGUMENT
//	409 key still executing                   → ABORTED (retry: "the client should retry at a higher level")
//	409 executed, response not retained       → FAILED_PRECONDITION (retrying never helps)
//	422 key reused for a different request    → FAILED_PRECONDITION
//	413 request over the cap                  → RESOURCE_EXHAUSTED
//	503 store unavailable (required route)    → UNAVAILABLE
//	    streaming request (gRPC only)         → FAILED_PRECONDITION
func grpcProblemCode(p proxy.Problem) codes.Code {
	switch p.Type {
	case problemInProgress:
		return codes.Aborted
	case problemNotReplayable, problemMismatch, problemNotUnary:
		return codes.FailedPrecondition
	case problemTooLarge:
		return codes.ResourceExhausted
	case problemStore:
		return codes.Unavailable
	default: // problemKeyMissing, problemKeyInvalid, problemKeyRepeated, problemBodyUnreadable
		return codes.InvalidArgument
	}
}

// event adds a span event naming the key by its hash only.
func (x *idempotency) event(span trace.Span, name string, scope dedupe.Scope, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.AddEvent(name, trace.WithAttributes(append(attrs, attrIdemKeyHash.String(scope.KeyHash()))...))
	}
}

// done counts the request's outcome and puts it on the span.
func (x *idempotency) done(span trace.Span, o idemOutcome) {
	x.metrics.count(o)
	if span.IsRecording() {
		span.SetAttributes(attrIdemOutcome.String(o.String()))
	}
}
