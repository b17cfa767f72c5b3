package egress

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/breaker"
)

// How a tunnel ended, the values of tracecar.tunnel.end_reason: the first
// side to finish sending, or an error on either side, or the proxy closing
// it at shutdown.
const (
	endNone int32 = iota
	endClient
	endUpstream
	endError
	endShutdown
)

var endReasons = [...]string{"", "client_closed", "upstream_closed", "error", "shutdown"}

// errTunnelNotOpened is the cause recorded when goproxy returned without
// dialing (the client connection could not be taken over).
var errTunnelNotOpened = errors.New("egress: tunnel not opened")

type tunnelKey struct{}

// tunnel is one CONNECT tunnel: admitted, traced and breaker-checked when
// the CONNECT arrives, dialed by goproxy through dialTunnel, and finished
// when goproxy closes the destination connection.
type tunnel struct {
	p     *Proxy
	ctx   context.Context // carries the span and correlation ID, for the log
	span  trace.Span
	done  func(breaker.Outcome)
	key   string
	start time.Time

	err         error // the dial's failure, from Classify (handler goroutine only)
	established atomic.Bool
	sent        atomic.Int64 // bytes written to the destination
	received    atomic.Int64 // bytes read from the destination
	end         atomic.Int32 // the first end reason
	finished    sync.Once
}

func (t *tunnel) ended(reason int32) { t.end.CompareAndSwap(endNone, reason) }

// serveConnect opens a tunnel. TLS inside it is not intercepted: the bytes
// pass untouched, so the span knows the destination, the byte counts, the
// duration and how it ended, but not the requests inside.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// RFC 9110 §9.3.6: the CONNECT target is "only the host name and port
	// number of the tunnel destination, separated by a colon".
	host, port, key, err := destination(r.URL.Host, 0)
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
	// A CONNECT rarely carries trace headers; when it does, they and a
	// correlation ID are honoured like on any request.
	ctx, o := p.resolveParent(r)
	ctx, span := p.startSpan(ctx, r, o, host, port)
	done, err := p.allowBreaker(key, span)
	if err != nil {
		p.release()
		p.breakerRejected(w, r, ctx, span, key, err)
		endSpan(span, 0, 0, 0, err)
		return
	}
	t := &tunnel{p: p, ctx: ctx, span: span, done: done, key: key, start: start}
	p.gp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, tunnelKey{}, t)))
	if !t.established.Load() {
		if t.err == nil {
			t.err = errTunnelNotOpened
			t.done(breaker.Ignore)
		}
		t.finish()
	}
}

// dialTunnel is goproxy's ConnectDialWithReq: it dials the destination of a
// CONNECT admitted by serveConnect and wraps the connection to count bytes
// and see the tunnel end.
func (p *Proxy) dialTunnel(req *http.Request, network, addr string) (net.Conn, error) {
	t, _ := req.Context().Value(tunnelKey{}).(*tunnel)
	if t == nil { // cannot happen: every CONNECT passes serveConnect
		return nil, errTunnelNotOpened
	}
	conn, err := p.dialer.DialContext(req.Context(), network, addr)
	if err != nil {
		t.err = proxy.Classify(req.Context(), err)
		t.done(proxy.Outcome(0, t.err, nil))
		return nil, t.err
	}
	// The breaker learns the outcome at connect time: what passes through
	// the tunnel is opaque, and a half-open probe must not be held for the
	// life of a keep-alive connection.
	t.done(breaker.Success)
	tc := &tunnelConn{Conn: conn, t: t}
	tc.tcp, _ = conn.(*net.TCPConn)
	p.track(tc, true)
	t.established.Store(true)
	p.metrics.tunnel()
	if t.span.IsRecording() {
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			t.span.SetAttributes(semconv.NetworkPeerAddressKey.String(a.IP.String()),
				semconv.NetworkPeerPortKey.Int(a.Port))
		}
	}
	return tc, nil
}

// tunnelDialFailed is goproxy's ConnectionErrHandler: it answers a CONNECT
// whose destination could not be dialed with a problem response (goproxy's
// own is plain text). It never writes into an established tunnel.
func (p *Proxy) tunnelDialFailed(w io.Writer, ctx *goproxy.ProxyCtx, err error) {
	t, _ := ctx.Req.Context().Value(tunnelKey{}).(*tunnel)
	if t == nil || t.established.Load() {
		return
	}
	if t.err == nil {
		t.err = proxy.Classify(ctx.Req.Context(), err)
	}
	status := proxy.Status(t.err)
	pb := proxy.Problem{Status: status, Detail: t.err.Error(), Upstream: t.key}
	if sc := t.span.SpanContext(); sc.IsValid() {
		pb.TraceID = sc.TraceID().String()
	}
	var pw problemWriter
	pw.h = make(http.Header, 5)
	proxy.WriteProblem(&pw, pb)
	pw.h.Set("Connection", "close")
	resp := &http.Response{
		StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: pw.h,
		ContentLength: int64(pw.buf.Len()), Body: io.NopCloser(&pw.buf),
	}
	_ = resp.Write(w) // the client may be gone; goproxy closes the connection next
}

// finish ends the tunnel's span, frees its concurrency slot, counts it and
// logs it, once.
func (t *tunnel) finish() {
	t.finished.Do(func() {
		p := t.p
		p.release()
		reason := t.end.Load()
		if reason == endNone {
			reason = endError // closed without either side finishing: a copy failed
		}
		status := http.StatusOK
		if t.err != nil {
			status = proxy.Status(t.err)
		}
		sent, received := t.sent.Load(), t.received.Load()
		elapsed := time.Since(t.start)
		if t.span.IsRecording() {
			if t.err == nil {
				t.span.SetAttributes(attrTunnelSent.Int64(sent), attrTunnelReceived.Int64(received),
					attrTunnelEndReason.String(endReasons[reason]))
			}
			switch {
			case t.err != nil:
				t.span.SetAttributes(semconv.ErrorTypeKey.String(proxy.ErrorType(t.err)))
				t.span.SetStatus(codes.Error, t.err.Error())
			case reason == endError:
				t.span.SetAttributes(semconv.ErrorTypeKey.String("tunnel_error"))
				t.span.SetStatus(codes.Error, "tunnel broke off")
			}
		}
		t.span.End()
		p.metrics.request(http.MethodConnect, status, -1)
		if p.settings.AccessLog {
			attrs := []slog.Attr{
				slog.String("method", http.MethodConnect),
				slog.String("destination", t.key),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
			}
			if t.err != nil {
				attrs = append(attrs, slog.String("error", t.err.Error()))
			} else {
				attrs = append(attrs, slog.Int64("bytes_sent", sent), slog.Int64("bytes_received", received),
					slog.String("end", endReasons[reason]))
			}
			p.log.LogAttrs(t.ctx, slog.LevelInfo, "egress tunnel", attrs...)
		}
	})
}

// tunnelConn is the destination side of a tunnel. It counts bytes, notes
// which side finished first, and finishes the tunnel when goproxy closes
// it. It keeps goproxy's half-close path (CloseWrite/CloseRead), so each
// direction ends on its own.
type tunnelConn struct {
	net.Conn
	tcp    *net.TCPConn
	t      *tunnel
	closed sync.Once
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.t.received.Add(int64(n))
	if err != nil {
		c.noteErr(err, endUpstream)
	}
	return n, err
}

func (c *tunnelConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.t.sent.Add(int64(n))
	if err != nil {
		c.noteErr(err, endError)
	}
	return n, err
}

func (c *tunnelConn) noteErr(err error, onEOF int32) {
	switch {
	case errors.Is(err, io.EOF):
		c.t.ended(onEOF)
	case errors.Is(err, net.ErrClosed): // closed here, after the end was noted
	default:
		c.t.ended(endError)
	}
}

// CloseWrite is called when the client has finished sending.
func (c *tunnelConn) CloseWrite() error {
	c.t.ended(endClient)
	if c.tcp == nil {
		return nil
	}
	return c.tcp.CloseWrite()
}

// CloseRead is called when the destination has finished sending.
func (c *tunnelConn) CloseRead() error {
	if c.tcp == nil {
		return nil
	}
	return c.tcp.CloseRead()
}

// Close closes the destination connection and finishes the tunnel.
func (c *tunnelConn) Close() error {
	var err error
	c.closed.Do(func() {
		err = c.Conn.Close()
		c.t.p.track(c, false)
		c.t.finish()
	})
	return err
}

func (p *Proxy) track(c *tunnelConn, add bool) {
	p.mu.Lock()
	if add {
		p.tunnels[c] = struct{}{}
	} else {
		delete(p.tunnels, c)
	}
	p.mu.Unlock()
}

// shutdown closes a tunnel from the proxy's side.
func (c *tunnelConn) shutdown() error {
	c.t.ended(endShutdown)
	return c.Close()
}
