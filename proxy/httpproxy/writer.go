package httpproxy

import (
	"bufio"
	"errors"
	"net"
	"net/http"

	"github.com/tracecar/tracecar/proxy"
	"github.com/tracecar/tracecar/proxy/httpproxy/internal/wsmeter"
)

// responseWriter records the status, the bytes written and the cause of a
// failure for the span, the metrics and the access log. It is pooled: one
// per request, reset on reuse.
type responseWriter struct {
	rw          http.ResponseWriter
	h           *Handler
	status      int
	bytes       int64
	wroteHeader bool
	grpc        bool          // a gRPC call: RPC span, gRPC errors
	msgs        *grpcMessages // a gRPC call's message events, when recorded
	err         error
	ws          *wsmeter.Conn // set when the connection was hijacked for an upgrade
}

func (w *responseWriter) reset(rw http.ResponseWriter, h *Handler) {
	*w = responseWriter{rw: rw, h: h}
}

// finalStatus is the status the client got (or, for a client that hung up,
// the 499 that is logged).
func (w *responseWriter) finalStatus() int {
	switch {
	case w.err != nil && !w.wroteHeader:
		return proxy.Status(w.err)
	case w.status == 0:
		return http.StatusOK // nothing written: net/http sends 200
	default:
		return w.status
	}
}

func (w *responseWriter) Header() http.Header { return w.rw.Header() }

func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses other than 101 are informational and precede the final
	// status (RFC 9110 §15.2); they pass through unrecorded.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.rw.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.rw.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once; ReverseProxy calls it
// after every write of a streaming response (SSE, chunked, gRPC).
func (w *responseWriter) Flush() {
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }

// errNotHijackable is returned when the connection cannot be taken over
// (HTTP/2 requests, which carry no upgrades).
var errNotHijackable = errors.New("httpproxy: connection cannot be hijacked")

// Hijack takes over the client connection for a protocol upgrade
// (WebSocket). The connection is wrapped so the span can report bytes,
// messages and the close code, and tracked so shutdown can close it.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.rw.(http.Hijacker)
	if !ok {
		return nil, nil, errNotHijackable
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	mc := wsmeter.NewConn(conn)
	if d := w.h.settings.StreamIdleTimeout; d > 0 {
		mc.SetIdleTimeout(d)
	}
	w.ws = mc
	w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	tc := &trackedConn{Conn: mc, h: w.h}
	w.h.track(tc, true)
	return tc, brw, nil
}

// trackedConn removes itself from the handler's set of hijacked connections
// when closed.
type trackedConn struct {
	*wsmeter.Conn
	h *Handler
}

func (c *trackedConn) Close() error {
	c.h.track(c, false)
	return c.Conn.Close()
}

func (h *Handler) track(c net.Conn, add bool) {
	h.mu.Lock()
	if add {
		h.hijacked[c] = struct{}{}
	} else {
		delete(h.hijacked, c)
	}
	h.mu.Unlock()
}
