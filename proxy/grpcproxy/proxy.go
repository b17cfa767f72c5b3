package grpcproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// Trace context fields, canonical for http.Header.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
)

// forwardedHeaders are kept as the app sent them: the sidecar neither strips
// nor appends them (httputil's Rewrite mode would strip them).
var forwardedHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// Proxy is the outbound gRPC proxy. It is an http.Handler; serve it with
// NewServer. Build it with New.
type Proxy struct {
	settings Settings
	scheme   string
	failure  [maxCode + 1]bool
	stats    proxy.GRPCStats // CLIENT spans, through otelgrpc
	prop     otelprop.TextMapPropagator
	log      *slog.Logger
	parents  proxy.ParentResolver
	breakers *breaker.Set
	tr       *http.Transport
	rp       *httputil.ReverseProxy
}

// New builds the proxy. It fails when a setting is unusable.
func New(s Settings, d Deps) (*Proxy, error) {
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	d.applyDefaults()
	p := &Proxy{
		settings: s,
		scheme:   "http",
		stats:    proxy.NewGRPCClientStats(proxy.GRPCStatsOptions{TracerProvider: d.TracerProvider}),
		prop:     d.Propagator,
		log:      d.Logger,
		parents:  proxy.ParentResolver{Propagator: d.Propagator, Correlation: s.Correlation, Stitch: d.Stitch, SerialInference: s.SerialInference},
		breakers: d.Breakers,
	}
	if s.TLS {
		p.scheme = "https"
	}
	for _, c := range s.FailureCodes {
		p.failure[c] = true
	}
	p.tr = newTransport(s)
	p.rp = &httputil.ReverseProxy{
		Rewrite:    p.rewrite,
		Transport:  p.tr,
		BufferPool: proxy.BufferPool{},
		// Zero: ReverseProxy still flushes every write of a response without
		// a Content-Length (every gRPC stream), so each message goes out as
		// it arrives; modifyResponse keeps a Trailers-Only response unflushed.
		FlushInterval:  0,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(d.Logger.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// newTransport is the one transport every call shares: HTTP/2 only, so each
// call is a stream on a pooled, multiplexed connection per destination, and
// trailers and full-duplex bodies pass. Only the dial is bounded: a call
// lasts as long as its caller's deadline (grpc-timeout, forwarded
// untouched), which the destination enforces.
func newTransport(s Settings) *http.Transport {
	dialer := &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second}
	var protocols http.Protocols
	if s.TLS {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Transport{
		Proxy:               nil, // never chain to HTTPS_PROXY: it may point at the sidecar itself
		DialContext:         dialer.DialContext,
		Protocols:           &protocols,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     DefaultIdleConnTimeout,
		DisableCompression:  true,
	}
}

// Close releases idle destination connections. Call it after the server's
// Shutdown.
func (p *Proxy) Close() { p.tr.CloseIdleConnections() }

// call is the state of one proxied call, shared with the ReverseProxy hooks
// through the request context.
type call struct {
	key    string // destination host:port
	origin proxy.Parent
	res    *http.Response
	err    error // from proxy.Classify, when the destination was not reached or broke off
}

type callKey struct{}

// message is the destination's grpc-message, percent-decoded
// (PROTOCOL-HTTP2.md), or "".
func (c *call) message() string {
	res := c.res
	if res == nil {
		return ""
	}
	v, ok := res.Trailer[headerGRPCMessage]
	if !ok {
		v = res.Header[headerGRPCMessage]
	}
	if len(v) == 0 {
		return ""
	}
	if m, err := url.PathUnescape(v[0]); err == nil {
		return m
	}
	return v[0]
}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// ServeHTTP proxies one gRPC call to the destination its :authority names.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !proxy.IsGRPC(r) {
		notGRPC(w)
		return
	}
	host, port, key, err := destination(r.Host)
	if err != nil {
		proxy.WriteGRPCError(w, codes.InvalidArgument, "tracecar: "+err.Error())
		return
	}
	if isSelf(r, key) {
		proxy.WriteGRPCError(w, codes.InvalidArgument, "tracecar: :authority "+key+
			" is the sidecar itself; name the destination with grpc.WithAuthority(\"host:port\")")
		return
	}
	if p.settings.Allow != nil && !p.settings.Allow(host, port) {
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "grpc egress denied", slog.String("destination", key))
		proxy.WriteGRPCError(w, codes.PermissionDenied, "tracecar: destination "+key+" is not allowed by the egress policy")
		return
	}
	start := time.Now()
	ctx, o := p.resolveParent(r)
	ctx, span := p.startSpan(ctx, r, o, host, port, start)
	report, err := p.allowBreaker(key, span)
	if err != nil {
		p.breakerRejected(w, span, err)
		p.endSpan(ctx, start, codes.Unavailable, "", err)
		return
	}
	c := &call{key: key, origin: o}
	// Deferred: ReverseProxy panics with http.ErrAbortHandler when a stream
	// breaks off mid-body, and the call must still be reported and its span
	// ended.
	defer func() {
		code := p.finalCode(r.Context(), c)
		report(p.breakerOutcome(code, c.err))
		p.endSpan(ctx, start, code, c.message(), c.err)
	}()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
}

// notGRPC answers a request that is not a gRPC call: 400, with a
// grpc-status for a gRPC client that speaks HTTP/2 but not gRPC's
// content-type.
func notGRPC(w http.ResponseWriter) {
	const msg = "tracecar: the egress gRPC port accepts only gRPC calls (HTTP/2, content-type application/grpc)"
	h := w.Header()
	h.Set(headerContentType, "text/plain; charset=utf-8")
	h.Set(headerGRPCStatus, strconv.Itoa(int(codes.InvalidArgument)))
	h.Set(headerGRPCMessage, msg)
	w.WriteHeader(http.StatusBadRequest)
	_, _ = io.WriteString(w, msg+"\n") // the status is what matters
}

// isSelf reports whether key is the address the call came in on: an app
// that dials the sidecar without grpc.WithAuthority would loop.
func isSelf(r *http.Request, key string) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a.String() == key
}

// rewrite points the outbound request at the destination and carries the
// call's trace context.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := callFrom(pr.In.Context())
	pr.Out.URL.Scheme = p.scheme
	pr.Out.URL.Host = c.key
	pr.Out.Host = pr.In.Host
	for _, k := range forwardedHeaders {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
	h := pr.Out.Header
	// The app's own trace context is replaced by the CLIENT span's: the
	// propagator writes traceparent and, when the span has one, the
	// tracestate that travels with it (an extracted tracestate is kept in
	// the span context, so a propagated one survives). Baggage is left as
	// the app sent it.
	delete(h, headerTraceparent)
	delete(h, headerTracestate)
	p.prop.Inject(pr.Out.Context(), otelprop.HeaderCarrier(h))
	if c.origin.SetCorrelationID {
		h.Set(p.settings.Correlation.HeaderName(), c.origin.CorrelationID)
	}
}

// modifyResponse keeps the response for finalCode. A Trailers-Only
// response (grpc-status among the headers, PROTOCOL-HTTP2.md) has no body:
// marking it so stops ReverseProxy from flushing the headers early, which
// would split them from the end of the stream and leave the app's client
// without a status ("server closed the stream without sending trailers").
func (p *Proxy) modifyResponse(res *http.Response) error {
	if c := callFrom(res.Request.Context()); c != nil {
		c.res = res
	}
	if _, ok := res.Header[headerGRPCStatus]; ok {
		res.ContentLength = 0
	}
	return nil
}

// errorHandler ends a call whose destination could not be reached (or
// answered no headers) with a Trailers-Only status naming it.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	c.err = proxy.Classify(r.Context(), err)
	if errors.Is(c.err, proxy.ErrClientGone) {
		return // nobody reads the answer
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "grpc egress failed",
		slog.String("destination", c.key), slog.String("error", c.err.Error()))
	proxy.WriteGRPCError(w, proxy.GRPCCode(c.err), "tracecar: upstream "+c.key+": "+c.err.Error())
}

// finalCode is the call's gRPC status as the app saw it: the destination's
// grpc-status (a trailer, or a header of a Trailers-Only response), else
// tracecar's for the failure in c.err. A stream that ended without a status
// was cut: by the app (CANCELLED) when its context is done, else by the
// destination.
func (p *Proxy) finalCode(ctx context.Context, c *call) codes.Code {
	if c.err != nil {
		return proxy.GRPCCode(c.err)
	}
	if res := c.res; res != nil {
		v, ok := res.Trailer[headerGRPCStatus]
		if !ok {
			v, ok = res.Header[headerGRPCStatus]
		}
		if ok && len(v) > 0 {
			if code, valid := proxy.ParseGRPCStatus(v[0]); valid {
				return code
			}
			return codes.Unknown
		}
	}
	if ctx.Err() != nil {
		c.err = fmt.Errorf("%w: %w", proxy.ErrClientGone, ctx.Err())
		return codes.Canceled
	}
	status := 0
	if c.res != nil {
		status = c.res.StatusCode
	}
	c.err = fmt.Errorf("%w: %s answered HTTP %d without grpc-status", proxy.ErrUpstreamProtocol, c.key, status)
	return proxy.HTTPStatusToGRPC(status)
}

// breakerOutcome is what the destination's breaker counts for a finished
// call: a transport failure or a status in FailureCodes is a failure; a
// call the app cancelled (or that ended CANCELLED) says nothing about the
// destination; anything else, RESOURCE_EXHAUSTED included, is a success.
func (p *Proxy) breakerOutcome(code codes.Code, err error) breaker.Outcome {
	switch {
	case errors.Is(err, proxy.ErrClientGone), code == codes.Canceled:
		return breaker.Ignore
	case err != nil:
		return breaker.Failure
	case code <= maxCode && p.failure[code]:
		return breaker.Failure
	default:
		return breaker.Success
	}
}

// allowBreaker asks the destination's breaker to admit a call; without
// breakers every call is admitted. The returned report records the call's
// outcome and any transition it caused on span.
func (p *Proxy) allowBreaker(key string, span trace.Span) (func(breaker.Outcome), error) {
	if p.breakers == nil {
		return func(breaker.Outcome) {}, nil
	}
	b := p.breakers.Get(key)
	before := b.State()
	done, err := b.Allow()
	if err != nil {
		return done, err
	}
	proxy.NoteBreakerTransition(span, b, before)
	return func(o breaker.Outcome) {
		before := b.State()
		done(o)
		proxy.NoteBreakerTransition(span, b, before)
	}, nil
}

// breakerRejected fails a call the destination's breaker refused, without
// dialing: UNAVAILABLE naming the destination and why, and a retry pushback
// (gRFC A6: grpc-retry-pushback-ms) for clients with a retry policy.
func (p *Proxy) breakerRejected(w http.ResponseWriter, span trace.Span, err error) {
	var open *breaker.OpenError
	if errors.As(err, &open) {
		if span.IsRecording() {
			span.AddEvent(proxy.EventBreakerRejected, trace.WithAttributes(
				attrBreakerState.String(open.State.String()),
				attrBreakerReason.String(open.Reason),
			))
		}
		w.Header().Set(headerPushback, strconv.FormatInt(open.RetryAfter.Milliseconds(), 10))
	}
	proxy.WriteGRPCError(w, codes.Unavailable, "tracecar: "+err.Error())
}
