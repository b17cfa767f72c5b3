package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// instrumentationName is the OTel instrumentation scope of the egress spans.
const instrumentationName = "github.com/tracecar/tracecar/proxy/egress"

// Proxy is the egress forward proxy. It is an http.Handler; serve it with
// NewServer. Build it with New.
type Proxy struct {
	settings Settings
	allow    *AllowList
	tracer   trace.Tracer
	prop     otelprop.TextMapPropagator
	log      *slog.Logger
	metrics  *Metrics
	parents  proxy.ParentResolver
	breakers *breaker.Set
	dialer   *net.Dialer
	tr       *http.Transport
	gp       *goproxy.ProxyHttpServer

	inflight   atomic.Int64
	overloaded string // problem detail when MaxConcurrent is reached

	mu      sync.Mutex
	tunnels map[*tunnelConn]struct{}
}

// New builds the egress proxy. It fails when the allow-list or a setting is
// malformed.
func New(s Settings, d Deps) (*Proxy, error) {
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	allow, err := ParseAllowList(s.Allow)
	if err != nil {
		return nil, err
	}
	d.applyDefaults(&s)
	p := &Proxy{
		settings:   s,
		allow:      allow,
		tracer:     d.TracerProvider.Tracer(instrumentationName),
		prop:       d.Propagator,
		log:        d.Logger,
		metrics:    d.Metrics,
		parents:    proxy.ParentResolver{Propagator: d.Propagator, Correlation: s.Correlation, Stitch: d.Stitch, SerialInference: s.SerialInference},
		breakers:   d.Breakers,
		dialer:     &net.Dialer{Timeout: s.DialTimeout, KeepAlive: 30 * time.Second},
		overloaded: fmt.Sprintf("egress concurrency limit (%d) reached", s.MaxConcurrent),
		tunnels:    make(map[*tunnelConn]struct{}),
	}
	p.tr = p.newTransport()
	p.gp = p.newGoproxy()
	return p, nil
}

// newTransport replaces goproxy's default transport, which keeps 2 idle
// connections per host, has no timeouts, skips TLS verification and follows
// HTTP_PROXY from the environment (a loop when the sidecar's own environment
// points at itself).
func (p *Proxy) newTransport() *http.Transport {
	s := p.settings
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.dialer.DialContext,
		ForceAttemptHTTP2:     true, // for https:// URLs sent in absolute form
		TLSHandshakeTimeout:   s.TLSHandshakeTimeout,
		ResponseHeaderTimeout: s.ResponseHeaderTimeout,
		IdleConnTimeout:       s.IdleConnTimeout,
		MaxIdleConns:          max(1024, s.MaxIdleConnsPerHost),
		MaxIdleConnsPerHost:   s.MaxIdleConnsPerHost,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // the app's bytes and Accept-Encoding pass untouched
	}
}

// newGoproxy configures goproxy (v1.9.3; v1.8.0 fixed keep-alive) for the
// parts it does well: relaying the response (flushing SSE and chunked
// bodies, trailers, WebSocket upgrades) and running CONNECT tunnels with
// half-close. Admission, tracing, the breaker and the transport are
// tracecar's, wired in through the request context.
func (p *Proxy) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{p.log}
	gp.Tr = p.tr
	gp.KeepAcceptEncoding = true
	gp.ConnectDial = nil // goproxy's default chains to HTTPS_PROXY
	gp.ConnectDialWithReq = p.dialTunnel
	gp.ConnectionErrHandler = p.tunnelDialFailed
	gp.NonproxyHandler = http.HandlerFunc(p.notProxy)
	gp.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		if ex := exchangeFrom(r.Context()); ex != nil {
			ctx.RoundTripper = ex
		}
		return r, nil
	})
	return gp
}

// goproxyLogger sends goproxy's own messages (mostly tunnel copy errors
// such as connection resets) to the debug level.
type goproxyLogger struct{ log *slog.Logger }

func (l goproxyLogger) Printf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), slog.String("component", "goproxy"))
	}
}

// Close releases idle destination connections and closes the CONNECT
// tunnels still open. Call it after the server's Shutdown.
func (p *Proxy) Close() {
	p.tr.CloseIdleConnections()
	p.mu.Lock()
	conns := make([]*tunnelConn, 0, len(p.tunnels))
	for c := range p.tunnels {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.shutdown() // ends the tunnel and its span; nothing more to do on error
	}
}

// ServeHTTP proxies one request: CONNECT becomes a tunnel, an absolute-form
// request is forwarded, anything else is refused (never an open server).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.serveConnect(w, r)
	case !r.URL.IsAbs():
		p.notProxy(w, r)
	default:
		p.serveHTTP(w, r)
	}
}

// notProxy answers an origin-form request: the egress proxy serves nothing
// of its own.
func (p *Proxy) notProxy(w http.ResponseWriter, r *http.Request) {
	p.refuse(w, r, refusal{status: http.StatusBadRequest, reason: -1,
		detail: "not a proxy request: send absolute-form requests (set HTTP_PROXY to this address) or CONNECT"})
}

// admit takes a concurrency slot, or reports that none is free. It never
// waits: a queue would only move the overload into the sidecar.
func (p *Proxy) admit() bool {
	if p.inflight.Add(1) > int64(p.settings.MaxConcurrent) {
		p.inflight.Add(-1)
		return false
	}
	p.metrics.start()
	return true
}

func (p *Proxy) release() {
	p.inflight.Add(-1)
	p.metrics.end()
}

// refusal is a request answered by the proxy itself before any destination
// is contacted.
type refusal struct {
	status     int
	reason     int // rejectConcurrency, rejectDenied, rejectBreaker; -1: not counted as a rejection
	detail     string
	upstream   string
	retryAfter time.Duration
	ctx        context.Context // for the log line and the problem's IDs; nil: the request's
}

// refuse answers with a problem body, counts and logs it.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, f refusal) {
	ctx := f.ctx
	if ctx == nil {
		ctx = r.Context()
	}
	if f.reason >= 0 {
		p.metrics.reject(f.reason)
	}
	p.metrics.request(r.Method, f.status, -1)
	pb := proxy.Problem{Status: f.status, Detail: f.detail, Upstream: f.upstream}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		pb.TraceID = sc.TraceID().String()
	}
	if f.retryAfter > 0 {
		// RFC 9110 §10.2.3: Retry-After is delay-seconds, a whole number.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((f.retryAfter+time.Second-1)/time.Second), 10))
	}
	proxy.WriteProblem(w, pb)
	if p.settings.AccessLog {
		p.log.LogAttrs(ctx, slog.LevelInfo, "egress refused",
			slog.String("method", r.Method),
			slog.String("destination", f.upstream),
			slog.Int("status", f.status),
			slog.String("reason", f.detail),
		)
	}
}

// destination splits the destination of an absolute-form URL or a CONNECT
// authority into a lower-case host, a port and the "host:port" that keys
// its breaker. defaultPort applies when the authority has none (0: a port
// is required).
func destination(authority string, defaultPort uint16) (host string, port uint16, key string, err error) {
	h, ps, err := net.SplitHostPort(authority)
	if err != nil {
		if defaultPort == 0 || strings.HasSuffix(authority, ":") {
			return "", 0, "", fmt.Errorf("bad destination %q: want host:port", authority)
		}
		h, ps = authority, strconv.Itoa(int(defaultPort))
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || n == 0 || h == "" {
		return "", 0, "", fmt.Errorf("bad destination %q: want host and a port 1-65535", authority)
	}
	host = strings.ToLower(h)
	return host, uint16(n), net.JoinHostPort(host, ps), nil
}

// allowBreaker asks the destination's breaker to admit a request; without
// breakers every request is admitted. A transition that the admission or
// the reported outcome causes becomes an event on span.
func (p *Proxy) allowBreaker(key string, span trace.Span) (func(breaker.Outcome), error) {
	if p.breakers == nil {
		return noOutcome, nil
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

func noOutcome(breaker.Outcome) {}

// breakerRejected records a rejection by the destination's breaker on the
// span and answers 503 with Retry-After.
func (p *Proxy) breakerRejected(w http.ResponseWriter, r *http.Request, ctx context.Context, span trace.Span, key string, err error) {
	detail := err.Error()
	var open *breaker.OpenError
	if errors.As(err, &open) {
		detail = fmt.Sprintf("circuit breaker for %s is %s (%s); retry in %ds",
			open.Upstream, open.State, open.Reason, int64(open.RetryAfter/time.Second))
		if span.IsRecording() {
			span.AddEvent(proxy.EventBreakerRejected, trace.WithAttributes(
				attrBreakerState.String(open.State.String()),
				attrBreakerReason.String(open.Reason),
			))
		}
	}
	retry, _ := proxy.RetryAfter(err)
	p.refuse(w, r, refusal{
		status: proxy.Status(err), reason: rejectBreaker, detail: detail,
		upstream: key, retryAfter: retry, ctx: ctx,
	})
}
