package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/propagation"
	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
	"github.com/tracecar/tracecar/proxy/stitch"
)

// instrumentationName is the OTel instrumentation scope of tracecar's spans.
const instrumentationName = "github.com/tracecar/tracecar/proxy/httpproxy"

// Canonical header names, so http.Header lookups never re-canonicalise.
const (
	headerTraceresponse = "Traceresponse"
	headerBaggage       = "Baggage"
	headerContentLength = "Content-Length"
)

// forwardedHeaders are kept as the client sent them: the sidecar is
// transparent, like Linkerd's proxy, and neither strips nor appends them
// (httputil's Rewrite mode would strip them).
var forwardedHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// errResponseAborted is the cause recorded when a response breaks off after
// its headers were sent (the upstream failed or went idle mid-body).
var errResponseAborted = errors.New("response aborted mid-body")

// Handler is the inbound proxy. It is an http.Handler; serve it with
// NewServer for h2c on the same port.
type Handler struct {
	settings Settings
	upstream string // for problem bodies and logs
	tracer   trace.Tracer
	prop     otelprop.TextMapPropagator
	log      *slog.Logger
	metrics  *Metrics
	breaker  *breaker.Breaker
	stitch   *stitch.Registry
	rp       *httputil.ReverseProxy
	tr       *http.Transport
	grpcTr   *http.Transport // HTTP/2-only, for gRPC calls
	idem     *idempotency    // nil: Idempotency-Key not enforced
	// grpcStats records gRPC calls' SERVER spans through otelgrpc.
	grpcStats proxy.GRPCStats

	mu        sync.Mutex
	hijacked  map[net.Conn]struct{}
	writerBuf sync.Pool
}

// New builds the inbound proxy from s and d. It fails only when s has no
// upstream or invalid Idempotency settings.
func New(s Settings, d Deps) (*Handler, error) {
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	d.applyDefaults()
	h := &Handler{
		settings: s,
		upstream: s.Upstream.Redacted(),
		tracer:   d.TracerProvider.Tracer(instrumentationName),
		grpcStats: proxy.NewGRPCServerStats(proxy.GRPCStatsOptions{
			TracerProvider: d.TracerProvider, NewRoot: s.Edge,
		}),
		prop:     d.Propagator,
		log:      d.Logger,
		metrics:  d.Metrics,
		breaker:  d.Breaker,
		stitch:   d.Stitch,
		tr:       newTransport(s),
		grpcTr:   newGRPCTransport(s),
		hijacked: make(map[net.Conn]struct{}),
	}
	h.writerBuf.New = func() any { return new(responseWriter) }
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      upstreamTransport{http: h.tr, grpc: h.grpcTr},
		BufferPool:     proxy.BufferPool{},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		ErrorLog:       slog.NewLogLogger(d.Logger.Handler(), slog.LevelDebug),
	}
	if s.Idempotency != nil {
		idem, err := newIdempotency(h, *s.Idempotency, d)
		if err != nil {
			return nil, err
		}
		h.idem = idem
	}
	return h, nil
}

// newTransport is the one shared upstream transport: a keep-alive pool sized
// for the single upstream host (Go's default keeps only 2 idle connections
// per host, which makes a busy sidecar redial constantly), bounded dials and
// response-header waits, no proxy from the environment and no transparent
// compression (the app's bytes pass untouched).
func newTransport(s Settings) *http.Transport {
	dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          s.MaxIdleConns,
		MaxIdleConnsPerHost:   s.MaxIdleConns,
		IdleConnTimeout:       s.IdleConnTimeout,
		ResponseHeaderTimeout: s.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// Close releases idle upstream connections and closes hijacked (WebSocket)
// connections still open. Call it after the server's Shutdown.
func (h *Handler) Close() {
	h.tr.CloseIdleConnections()
	h.grpcTr.CloseIdleConnections()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.hijacked {
		_ = c.Close() // the peer sees EOF; nothing more to do on error
	}
	if h.idem != nil {
		h.idem.close()
	}
}

// ServeHTTP proxies one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := h.writerBuf.Get().(*responseWriter)
	rw.reset(w, h)
	rw.grpc = proxy.IsGRPC(r)
	defer h.writerBuf.Put(rw)

	ctx, span, cid, own := h.startSpan(r, start)
	ctx = propagation.ContextWithCorrelationID(ctx, cid)
	h.metrics.start()

	// The correlation ID goes to the app and back to the caller; the
	// traceresponse (Trace Context Level 2) names this hop's span.
	r.Header.Set(h.settings.Correlation.Header, cid)
	if h.settings.Correlation.Header != propagation.HeaderRequestID {
		// Invalid or repeated incoming request IDs are replaced, never passed on.
		if v, ok := r.Header[propagation.HeaderRequestID]; ok &&
			(len(v) != 1 || !propagation.ValidCorrelationID(v[0], h.settings.Correlation.MaxLen)) {
			r.Header.Set(propagation.HeaderRequestID, cid)
		}
	}
	out := w.Header()
	out.Set(h.settings.Correlation.Header, cid)
	if own {
		// Only a span of this hop's own is named: with the SDK disabled, the
		// no-op span merely carries the caller's context.
		var buf [64]byte
		out.Set(headerTraceresponse, string(propagation.AppendTraceresponse(buf[:0], span.SpanContext())))
	}
	r = r.WithContext(ctx)
	if h.stitch != nil {
		defer h.stitch.Begin(stitch.Entry{SpanContext: span.SpanContext(), CorrelationID: cid})()
	}

	var report func(breaker.Outcome)
	defer func() {
		// Whatever happens, the span ends and the request is counted. An
		// ErrAbortHandler panic is ReverseProxy giving up on a response
		// whose body broke off after the headers went out.
		p := recover()
		if rw.grpc && rw.msgs != nil {
			if e := rw.msgs.tooLarge.Load(); e != nil {
				// The call ended because a request message was over the
				// limit: say so, with a status, rather than resetting a
				// stream whose headers are out.
				rw.err = e
				if p == http.ErrAbortHandler { //nolint:errorlint // ReverseProxy panics with this very value
					proxy.EndGRPCStream(rw, proxy.GRPCCode(e), e.Error())
					p = nil
				}
			}
		}
		if p != nil && rw.err == nil {
			rw.err = proxy.Classify(ctx, errResponseAborted)
		}
		status := rw.finalStatus()
		if report != nil {
			h.reportOutcome(span, report, proxy.Outcome(status, rw.err, h.settings.FailureStatuses))
		}
		h.finish(ctx, r, rw, span, start, status)
		if p != nil {
			panic(p)
		}
	}()

	// Idempotency-Key: replay, 409, 422, 400 before touching the app; an
	// execution it claims goes through the breaker and to the app itself.
	if h.idem != nil && h.idem.serve(rw, r, span, &report) {
		return
	}
	if h.breaker != nil {
		var err error
		if report, err = h.allow(span); err != nil {
			h.errorHandler(rw, r, err)
			return
		}
	}
	if n := h.settings.MaxBodyBytes; n > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > n {
			h.errorHandler(rw, r, &http.MaxBytesError{Limit: n})
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, n)
	}
	if rw.grpc {
		r = h.grpcBodies(r, rw, span)
	}
	h.rp.ServeHTTP(rw, r)
}

// rewrite turns the inbound request into the one sent to the app.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(h.settings.Upstream)
	pr.Out.Host = pr.In.Host // the app sees the Host the client asked for
	for _, k := range forwardedHeaders {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
	// The strict propagator owns traceparent and tracestate on the way out:
	// it replaces the caller's, and removes a tracestate that must not
	// travel (W3C Trace Context §3.3: with an invalid traceparent, tracestate
	// is ignored).
	h.prop.Inject(pr.Out.Context(), otelprop.HeaderCarrier(pr.Out.Header))
	// baggage passes through byte for byte, whatever the propagator made of it.
	if v, ok := pr.In.Header[headerBaggage]; ok {
		pr.Out.Header[headerBaggage] = v
	}
}

// modifyResponse drops the app's copies of the headers the sidecar owns, so
// the caller gets exactly one of each, and puts an idle bound on streaming
// responses (no total timeout: a stream may last as long as it is alive).
func (h *Handler) modifyResponse(resp *http.Response) error {
	delete(resp.Header, h.settings.Correlation.Header)
	delete(resp.Header, headerTraceresponse)
	if _, ok := resp.Header["Grpc-Status"]; ok {
		// A gRPC Trailers-Only response (grpc-status among the headers,
		// PROTOCOL-HTTP2.md) has no body. Saying so keeps ReverseProxy from
		// flushing the headers early, apart from the end of the stream,
		// which would leave the client without a status.
		resp.ContentLength = 0
	}
	if m, ok := resp.Request.Context().Value(grpcMessagesKey{}).(*grpcMessages); ok {
		resp.Body = &messageBody{ReadCloser: resp.Body, ev: &m.sent}
	}
	if d := h.settings.StreamIdleTimeout; d > 0 && resp.ContentLength < 0 &&
		resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = newIdleBody(resp.Body, d)
	}
	return nil
}

// errorHandler answers a failed exchange with a problem body. The cause is
// kept on the writer for the span, the metrics and the access log.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	err = proxy.Classify(r.Context(), err)
	if rw, ok := w.(*responseWriter); ok {
		rw.err = err
		if rw.wroteHeader {
			return // headers already went out; nothing more can be said
		}
	}
	if errors.Is(err, proxy.ErrClientGone) {
		return // nobody to answer
	}
	if proxy.IsGRPC(r) {
		writeGRPCError(w, err, h.upstream)
		return
	}
	p := proxy.ProblemFor(err, h.upstream)
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		p.TraceID = sc.TraceID().String()
	}
	p.CorrelationID = propagation.CorrelationIDFromContext(r.Context())
	proxy.WriteProblem(w, p)
}

// finish ends the span and records metrics and the access log line.
func (h *Handler) finish(ctx context.Context, r *http.Request, rw *responseWriter, span trace.Span, start time.Time, status int) {
	elapsed := time.Since(start)
	if rw.grpc {
		h.endGRPCSpan(ctx, start, span, r, rw, status)
	} else {
		h.endSpan(span, rw, status)
	}
	h.metrics.done(r.Method, status, elapsed)
	if h.settings.AccessLog {
		attrs := [...]slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.Int64("bytes", rw.bytes),
			slog.String("proto", r.Proto),
			slog.String("error", errString(rw.err)),
		}
		n := len(attrs)
		if rw.err == nil {
			n-- // the error attribute is last
		}
		h.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

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
