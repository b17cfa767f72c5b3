package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// exchangeKey carries the *exchange in the context of the request sent to
// the app, where the reverse proxy's hooks find it.
type exchangeKey struct{}

// exchange is the one execution of a claimed request. It watches what the
// app answers and turns it into exactly one decision: record (completed or
// not replayable) or release. All its methods run on the request's
// goroutine; only timedOut is touched by the lease timer.
type exchange struct {
	x         *idempotency
	claim     *dedupe.Claim
	method    string
	clientCtx context.Context
	span      trace.Span
	cancel    context.CancelFunc
	timer     *time.Timer
	timedOut  atomic.Bool
	unbind    func() bool   // stops the client binding of a detached stream
	grpc      *grpcExchange // a gRPC call's response state; nil for HTTP

	status  int
	header  http.Header
	body    bytes.Buffer
	length  int64 // the app's Content-Length; -1 when unknown
	decided bool  // recorded or released
	outcome idemOutcome
}

// execute forwards a claimed request to the app, detached from the client,
// and records or releases the claim.
func (x *idempotency) execute(rw *responseWriter, r *http.Request, span trace.Span, report *func(breaker.Outcome), c *dedupe.Claim, body []byte) {
	x.event(span, eventIdemClaim, c.Scope)
	ex := &exchange{x: x, claim: c, method: r.Method, clientCtx: r.Context(), span: span, length: -1, outcome: outcomeExecuted}
	if rw.grpc {
		ex.grpc = new(grpcExchange)
	}
	if x.h.breaker != nil {
		rep, err := x.h.allow(span)
		if err != nil {
			// The app never saw the request: a retry may run it.
			ex.release("the circuit breaker is open")
			x.done(span, ex.outcome)
			x.h.errorHandler(rw, r, err)
			return
		}
		*report = rep
	}

	// The client's hang-up must not cancel the execution (otherwise its
	// outcome would be unknown for no reason): the request to the app runs
	// on a context detached from the client's, with the trace and
	// correlation values kept, bounded a little under the lease.
	ctx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(r.Context()), exchangeKey{}, ex))
	ex.cancel = cancel
	ex.timer = time.AfterFunc(x.execBound, func() {
		ex.timedOut.Store(true)
		cancel()
	})
	out := r.WithContext(ctx)
	out.Body, out.ContentLength, out.TransferEncoding, out.GetBody = bodyReader(body), int64(len(body)), nil, nil
	if rw.grpc {
		out = x.h.grpcBodies(out, rw, span) // message events, as for any gRPC call
	}

	defer func() {
		p := recover() // http.ErrAbortHandler: the response broke off mid-body
		ex.timer.Stop()
		if ex.unbind != nil {
			ex.unbind()
		}
		cancel()
		if !ex.decided {
			// Nothing told the exchange how it ended. The app may have run
			// the request, so the key is never released on a guess.
			ex.notReplayable("the exchange with the app ended without a response")
		}
		x.done(span, ex.outcome)
		if p != nil {
			panic(p)
		}
	}()
	x.rp.ServeHTTP(rw, out)
}

// rewrite is the Handler's rewrite, plus one change: the key travels to the
// app under a lower-case field name. Go's Transport re-sends a request on
// its own after a failure on a reused connection when the request carries
// Idempotency-Key or X-Idempotency-Key (net/http Request.isReplayable) and
// has no body; executing once per key is tracecar's job here, so the
// transport must not repeat it. Field names are case-insensitive (RFC 9110
// §5.1): the app receives the same header.
func (x *idempotency) rewrite(pr *httputil.ProxyRequest) {
	x.h.rewrite(pr)
	for _, k := range [...][2]string{{headerIdempotencyKey, "idempotency-key"}, {headerXIdempotencyKey, "x-idempotency-key"}} {
		if v, ok := pr.Out.Header[k[0]]; ok {
			delete(pr.Out.Header, k[0])
			pr.Out.Header[k[1]] = v
		}
	}
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// modifyResponse is the Handler's, then decides what the app's answer
// means for the key. A decision known from the headers alone (release,
// not replayable) is made before the client sees anything.
func (x *idempotency) modifyResponse(res *http.Response) error {
	if err := x.h.modifyResponse(res); err != nil {
		return err
	}
	if ex := exchangeFrom(res.Request.Context()); ex != nil && !ex.decided {
		ex.onResponse(res)
	}
	return nil
}

func (ex *exchange) onResponse(res *http.Response) {
	if ex.grpc != nil {
		if res.StatusCode == http.StatusOK {
			ex.onGRPCResponse(res)
			return
		}
		ex.grpc = nil // not a gRPC response: recorded as the HTTP one it is
	}
	x := ex.x
	ex.status = res.StatusCode
	if _, ok := x.releaseSet[res.StatusCode]; ok {
		ex.release(fmt.Sprintf("the app answered %d, a release status", res.StatusCode))
		ex.detach()
		return
	}
	var reason string
	switch {
	case res.StatusCode == http.StatusSwitchingProtocols:
		reason = "the app switched protocols (101)"
	case isEventStream(res.Header.Get("Content-Type")):
		reason = "streaming response (text/event-stream)"
	case len(res.Trailer) > 0:
		reason = "the response carries trailers, which are not retained"
	case res.ContentLength > x.s.MaxResponseBytes:
		reason = fmt.Sprintf("response body of %d bytes is over the %d-byte replay limit", res.ContentLength, x.s.MaxResponseBytes)
	}
	if reason != "" {
		ex.notReplayable(reason)
		return
	}
	ex.header = res.Header.Clone()
	if noBody(ex.method, res.StatusCode) || res.ContentLength == 0 {
		ex.complete()
		return
	}
	ex.length = res.ContentLength
	if ex.length > 0 {
		ex.body.Grow(int(ex.length))
	}
	res.Body = &teeBody{ReadCloser: res.Body, ex: ex}
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// teeBody copies the app's response body into the exchange as the reverse
// proxy streams it to the client.
type teeBody struct {
	io.ReadCloser
	ex *exchange
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.ex.onBody(p[:n], err)
	return n, err
}

// Close drains what the client did not take (it hung up mid-body) so the
// outcome is still recorded, bounded by the replay limit and the lease.
func (b *teeBody) Close() error {
	if !b.ex.decided {
		var pool proxy.BufferPool
		buf := pool.Get()
		for !b.ex.decided {
			n, err := b.ReadCloser.Read(buf)
			b.ex.onBody(buf[:n], err)
			if err != nil {
				break
			}
		}
		pool.Put(buf)
	}
	return b.ReadCloser.Close()
}

// onBody takes the next piece of the app's body. The record is written when
// the last byte is known, before that byte is passed on to the client, so a
// client that retries the moment it has the whole response finds it.
func (ex *exchange) onBody(p []byte, err error) {
	if ex.decided {
		return
	}
	if int64(ex.body.Len()+len(p)) > ex.x.s.MaxResponseBytes {
		ex.notReplayable(fmt.Sprintf("response body over the %d-byte replay limit", ex.x.s.MaxResponseBytes))
		return
	}
	ex.body.Write(p)
	if ex.grpc != nil && ex.grpc.streaming(p) {
		ex.notReplayable("server streaming: the app sent more than one response message")
		return
	}
	switch {
	case errors.Is(err, io.EOF) && ex.grpc != nil:
		ex.endGRPC()
	case errors.Is(err, io.EOF) || (ex.length >= 0 && int64(ex.body.Len()) == ex.length):
		ex.complete()
	case err != nil:
		// The app answered, then the body broke off: it ran the request,
		// but what it said is lost.
		cause := "the response body broke off"
		if ex.timedOut.Load() {
			cause = "the response body did not finish within the lease"
		}
		ex.notReplayable(fmt.Sprintf("%s after %d bytes", cause, ex.body.Len()))
	}
}

// errorHandler answers a failed exchange. A dial failure releases the key:
// the app provably never got the request. Any other failure happened after
// the request was sent, so the outcome is ambiguous: the problem answered
// (502, 504) is recorded and replayed, never run again.
func (x *idempotency) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	if ex == nil || ex.decided {
		x.h.errorHandler(w, r, err)
		return
	}
	if isDialFailure(proxy.Classify(r.Context(), err)) && !ex.timedOut.Load() {
		ex.release("the app could not be reached (" + err.Error() + ")")
		x.h.errorHandler(w, r, err)
		return
	}
	if ex.timedOut.Load() {
		err = fmt.Errorf("%w: no response within %s (the idempotency lease bound): %w", proxy.ErrUpstreamTimeout, x.execBound, err)
	}
	err = proxy.Classify(r.Context(), err)
	var pw problemWriter
	x.h.errorHandler(&pw, r, err)
	if pw.status == 0 {
		// Nothing to answer (cannot happen on a detached context): the
		// request was sent, so the key is kept, never released on a guess.
		ex.notReplayable("the exchange with the app failed: " + err.Error())
		return
	}
	ex.status, ex.header = pw.status, pw.header
	ex.body.Write(pw.body)
	ex.complete()

	if rw, ok := w.(*responseWriter); ok {
		rw.err = err
	}
	h := w.Header()
	for k, v := range pw.header {
		h[k] = v
	}
	w.WriteHeader(pw.status)
	_, _ = w.Write(pw.body) // the client may be gone; the record is kept
}

func isDialFailure(err error) bool {
	var op *net.OpError
	return errors.Is(err, proxy.ErrUpstreamUnreachable) && errors.As(err, &op) && op.Op == "dial"
}

// problemWriter captures the problem the Handler answers, so the same bytes
// are recorded and sent.
type problemWriter struct {
	header http.Header
	status int
	body   []byte
}

func (p *problemWriter) Header() http.Header {
	if p.header == nil {
		p.header = make(http.Header, 4)
	}
	return p.header
}

func (p *problemWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	p.body = append(p.body, b...)
	return len(b), nil
}

// complete records the app's response for replay.
func (ex *exchange) complete() {
	var trailer http.Header
	if ex.grpc != nil {
		trailer = ex.grpc.trailer
	}
	ex.record(&dedupe.Record{State: dedupe.StateCompleted, Response: &dedupe.Response{
		Status: ex.status, Header: ex.header, Body: ex.body.Bytes(), Trailer: trailer,
	}})
}

// notReplayable records that the request was executed but its response is
// not kept; the rest of the response is only delivered.
func (ex *exchange) notReplayable(reason string) {
	ex.body = bytes.Buffer{}
	ex.record(&dedupe.Record{State: dedupe.StateNotReplayable, Status: ex.status, Reason: reason})
	ex.detach()
}

func (ex *exchange) record(rec *dedupe.Record) {
	ex.decided = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ex.clientCtx), storeOpTimeout)
	defer cancel()
	if err := ex.x.store.Complete(ctx, ex.claim, rec, ex.x.s.Retention); err != nil {
		// ErrNotOwner: the lease lapsed and another request took the key
		// over; a stale owner never overwrites. ErrStoreUnavailable: the
		// claim lapses at its lease and a retry may run the request again.
		ex.outcome = outcomeRecordFailed
		ex.x.h.log.LogAttrs(ex.clientCtx, slog.LevelWarn, "idempotency record not stored; a retry may execute again",
			slog.String("idempotency_key_hash", ex.claim.Scope.KeyHash()), slog.String("error", err.Error()))
		return
	}
	ex.x.metrics.recorded(rec.State == dedupe.StateCompleted)
	ex.x.event(ex.span, eventIdemRecord, ex.claim.Scope, attrIdemState.String(rec.State.String()),
		attrIdemReason.String(rec.Reason))
}

// release drops the claim so that a retry executes.
func (ex *exchange) release(reason string) {
	ex.decided = true
	ex.outcome = outcomeReleased
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ex.clientCtx), storeOpTimeout)
	defer cancel()
	ex.x.event(ex.span, eventIdemRelease, ex.claim.Scope, attrIdemReason.String(reason))
	if err := ex.x.store.Release(ctx, ex.claim); err != nil {
		ex.x.h.log.LogAttrs(ex.clientCtx, slog.LevelWarn, "idempotency claim not released; it lapses at its lease",
			slog.String("idempotency_key_hash", ex.claim.Scope.KeyHash()), slog.String("error", err.Error()))
	}
}

// detach ends the lease bound once the key is decided: what is left is
// delivering the response (a stream may last), so from now on the client's
// hang-up ends it, as for any proxied request.
func (ex *exchange) detach() {
	if ex.timer == nil || !ex.timer.Stop() {
		return // not started yet (breaker release), or already fired
	}
	ex.unbind = context.AfterFunc(ex.clientCtx, ex.cancel)
}
