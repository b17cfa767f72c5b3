package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// Canonical header names, so http.Header lookups never re-canonicalise.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
	headerBaggage     = "Baggage"
)

// errNotForwarded is the cause recorded when goproxy answered a request
// without asking the transport (it should never happen: every request that
// reaches goproxy is absolute-form and passes the request hook).
var errNotForwarded = errors.New("egress: request was not forwarded")

type exchangeKey struct{}

// exchange is one plain-HTTP request in flight. goproxy finds it in the
// request context and uses it as the round tripper, so the transport call,
// its error and the response body stay under tracecar's control. All fields
// but timedOut are touched only by the handler goroutine.
type exchange struct {
	p         *Proxy
	key       string          // destination host:port
	clientCtx context.Context // the app's request context: done when it hangs up
	span      trace.Span
	cancel    context.CancelFunc
	timer     *time.Timer
	timedOut  atomic.Bool

	status                 int // the destination's status; 0: none received
	protoMajor, protoMinor int
	upgrade                bool
	upgraded               io.ReadWriter // the destination's side of an upgrade
	err                    error         // why no response came, from Classify
	body                   *countingBody
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// serveHTTP forwards one absolute-form request.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var defaultPort uint16
	switch r.URL.Scheme {
	case "http":
		defaultPort = 80
	case "https":
		defaultPort = 443
	default:
		p.refuse(w, r, refusal{status: http.StatusBadRequest, reason: -1,
			detail: fmt.Sprintf("unsupported URL scheme %q: the egress proxy forwards http and https", r.URL.Scheme)})
		return
	}
	host, port, key, err := destination(r.URL.Host, defaultPort)
	if err != nil {
		p.refuse(w, r, refusal{status: http.StatusBadRequest, reason: -1, detail: err.Error()})
		return
	}
	if !p.allow.Allows(host, port) {
		p.refuse(w, r, refusal{status: http.StatusForbidden, reason: rejectDenied, upstream: key,
			detail: "destination " + key + " is not on the egress allow-list"})
		return
	}
	if !p.admit() {
		p.refuse(w, r, refusal{status: http.StatusServiceUnavailable, reason: rejectConcurrency, upstream: key, detail: p.overloaded})
		return
	}
	defer p.release()

	removeHopByHop(r.Header, true)
	ctx, o := p.resolveParent(r)
	ctx, span := p.startSpan(ctx, r, o, host, port)
	done, err := p.allowBreaker(key, span)
	if err != nil { // open: the destination is not dialed
		p.breakerRejected(w, r, ctx, span, key, err)
		endSpan(span, 0, 0, 0, err)
		return
	}
	p.prepareHeaders(ctx, r.Header, o)

	ex := &exchange{p: p, key: key, clientCtx: r.Context(), span: span}
	reqCtx, cancel := context.WithCancel(context.WithValue(ctx, exchangeKey{}, ex))
	ex.cancel = cancel
	if d := p.settings.RequestTimeout; d > 0 {
		ex.timer = time.AfterFunc(d, ex.timeout)
	}
	defer func() {
		// Whatever happens, the breaker hears the outcome, the span ends and
		// the request is counted.
		rec := recover()
		ex.stopTimer()
		cancel()
		abort := p.finish(ctx, r, ex, done, o, start)
		switch {
		case rec != nil:
			panic(rec)
		case abort:
			// The body broke off after the headers went out: abort the
			// connection so the app cannot mistake the truncated body for
			// a complete one (as httputil.ReverseProxy does).
			panic(http.ErrAbortHandler)
		}
	}()
	if r.Header.Get("Upgrade") == "" {
		p.gp.ServeHTTP(w, r.WithContext(reqCtx))
		return
	}
	// goproxy relays an upgraded connection until either side ends, then
	// returns without closing either: close both here, so the other side
	// (and goproxy's copy still blocked on it) ends too.
	hw := &hijackRecorder{ResponseWriter: w}
	p.gp.ServeHTTP(hw, r.WithContext(reqCtx))
	if hw.conn != nil {
		_ = hw.conn.Close() // the app's side; it may be closed already
	}
	if c, ok := ex.upgraded.(io.Closer); ok {
		_ = c.Close() // the destination's side; likewise
	}
}

// hijackRecorder passes a response through and remembers the connection
// goproxy takes over for an upgrade.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack implements http.Hijacker.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = c
	}
	return c, rw, err
}

// Flush implements http.Flusher.
func (h *hijackRecorder) Flush() { _ = http.NewResponseController(h.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the server's writer.
func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// prepareHeaders writes the trace context and correlation ID the
// destination receives.
func (p *Proxy) prepareHeaders(ctx context.Context, h http.Header, o proxy.Parent) {
	if o.SetCorrelationID {
		// Stitching by inference: the destination can quote the inbound
		// request's correlation ID.
		h.Set(p.settings.Correlation.Header, o.CorrelationID)
	}
	// traceparent and tracestate are rewritten with the client span as
	// parent (W3C Trace Context §3.2: a vendor that participates MUST
	// update the parent-id); stale copies never travel.
	baggage := h[headerBaggage]
	delete(h, headerTraceparent)
	delete(h, headerTracestate)
	p.prop.Inject(ctx, otelprop.HeaderCarrier(h))
	if baggage != nil {
		h[headerBaggage] = baggage // passed byte for byte, whatever the propagator made of it
	}
}

// timeout fires when the request outlives Settings.RequestTimeout.
func (ex *exchange) timeout() {
	ex.timedOut.Store(true)
	ex.cancel()
}

// stopTimer exempts the rest of the exchange from the request timeout (a
// stream whose headers arrived, or the end).
func (ex *exchange) stopTimer() {
	if ex.timer != nil {
		ex.timer.Stop()
	}
}

func (ex *exchange) classify(err error) error {
	if ex.timedOut.Load() {
		return fmt.Errorf("%w: no complete response within %s (%w)", proxy.ErrUpstreamTimeout, ex.p.settings.RequestTimeout, err)
	}
	return proxy.Classify(ex.clientCtx, err)
}

// RoundTrip implements goproxy.RoundTripper: it sends the request through
// the tuned transport. A failure becomes a problem response rather than an
// error, so goproxy never writes its own plain-text 500.
func (ex *exchange) RoundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	resp, err := ex.p.tr.RoundTrip(req)
	if err != nil {
		ex.err = ex.classify(err)
		return ex.problemResponse(req), nil
	}
	ex.status, ex.protoMajor, ex.protoMinor = resp.StatusCode, resp.ProtoMajor, resp.ProtoMinor
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgrade is a stream; goproxy relays it over the writable body,
		// which must stay as the transport made it.
		ex.upgrade = true
		ex.upgraded, _ = resp.Body.(io.ReadWriter)
		ex.stopTimer()
		return resp, nil
	}
	if isEventStream(resp.Header) {
		ex.stopTimer() // SSE may last as long as it is alive
	}
	removeHopByHop(resp.Header, false)
	if resp.ContentLength < 0 && req.ProtoAtLeast(1, 1) && resp.Body != http.NoBody {
		// A body of unknown length may be a stream (chunked long-poll,
		// NDJSON). goproxy flushes each write only when it sees
		// Transfer-Encoding: chunked, which the transport has consumed;
		// restoring it also tells net/http to answer chunked.
		resp.Header["Transfer-Encoding"] = []string{"chunked"}
	}
	ex.body = &countingBody{ReadCloser: resp.Body}
	resp.Body = ex.body
	return resp, nil
}

// problemResponse turns ex.err into the response goproxy relays.
func (ex *exchange) problemResponse(req *http.Request) *http.Response {
	status := proxy.Status(ex.err)
	pb := proxy.Problem{Status: status, Detail: ex.err.Error(), Upstream: ex.key}
	if sc := ex.span.SpanContext(); sc.IsValid() {
		pb.TraceID = sc.TraceID().String()
	}
	var pw problemWriter
	pw.h = make(http.Header, 4)
	proxy.WriteProblem(&pw, pb)
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        pw.h,
		Body:          io.NopCloser(bytes.NewReader(pw.buf.Bytes())),
		ContentLength: int64(pw.buf.Len()),
		Request:       req,
	}
}

// finish settles the exchange: the breaker's outcome, the span, the metrics
// and the access log line. It reports whether the response broke off after
// its headers went out.
func (p *Proxy) finish(ctx context.Context, r *http.Request, ex *exchange, done func(breaker.Outcome), o proxy.Parent, start time.Time) (abort bool) {
	err, status := ex.err, ex.status
	var n int64
	if b := ex.body; b != nil && err == nil {
		n = b.n
		switch {
		case b.err != nil:
			err = ex.classify(b.err)
			abort = !errors.Is(err, proxy.ErrClientGone)
		case !b.eof:
			err = fmt.Errorf("%w: the response was not read to its end", proxy.ErrClientGone)
		}
	}
	if err == nil && status == 0 && !ex.upgrade {
		err = fmt.Errorf("%w: %w", proxy.ErrUpstreamProtocol, errNotForwarded)
	}
	done(proxy.Outcome(status, err, p.settings.FailureStatuses))
	endSpan(ex.span, status, ex.protoMajor, ex.protoMinor, err)
	shown := status
	if shown == 0 {
		shown = proxy.Status(err)
	}
	elapsed := time.Since(start)
	p.metrics.request(r.Method, shown, elapsed)
	if p.settings.AccessLog {
		attrs := [...]slog.Attr{
			slog.String("method", r.Method),
			slog.String("url", fullURL(r.URL)),
			slog.Int("status", shown),
			slog.Duration("duration", elapsed),
			slog.Int64("bytes", n),
			slog.String("parent_source", o.Source),
			slog.String("error", errString(err)),
		}
		k := len(attrs)
		if err == nil {
			k-- // the error attribute is last
		}
		p.log.LogAttrs(ctx, slog.LevelInfo, "egress request", attrs[:k]...)
	}
	return abort
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// countingBody records how much of the destination's response goproxy
// relayed, and how reading it ended.
type countingBody struct {
	io.ReadCloser
	n   int64
	eof bool
	err error
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.eof = true
	case b.err == nil:
		b.err = err
	}
	return n, err
}

// WriteTo relays the body to w through a pooled buffer. goproxy copies
// with io.Copy, which would otherwise allocate 32 KiB per response.
func (b *countingBody) WriteTo(w io.Writer) (int64, error) {
	var pool proxy.BufferPool
	buf := pool.Get()
	defer pool.Put(buf)
	var written int64
	for {
		n, rerr := b.Read(buf[:])
		if n > 0 {
			wn, werr := w.Write(buf[:n])
			written += int64(wn)
			if werr != nil {
				return written, werr
			}
			if wn != n {
				return written, io.ErrShortWrite
			}
		}
		if errors.Is(rerr, io.EOF) {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// problemWriter captures a problem response written by proxy.WriteProblem,
// for goproxy to relay.
type problemWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (w *problemWriter) Header() http.Header         { return w.h }
func (w *problemWriter) WriteHeader(status int)      { w.status = status }
func (w *problemWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }

// statusText is strconv.Itoa for the common statuses without allocating.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		return statusStrings[code-100]
	}
	return strconv.Itoa(code)
}

var statusStrings = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()
