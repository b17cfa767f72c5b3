package wsmeter_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tracecar/tracecar/proxy/httpproxy/internal/wsmeter"
)

// message is one WebSocket message the client sends and the server echoes.
type message struct {
	typ  websocket.MessageType
	size int
}

// The sizes cover the 7-bit, 16-bit and 64-bit length encodings (RFC 6455 §5.2).
var messages = []message{
	{websocket.MessageText, 5},
	{websocket.MessageText, 125},
	{websocket.MessageText, 126},
	{websocket.MessageText, 4000},
	{websocket.MessageBinary, 0},
	{websocket.MessageBinary, 65535},
	{websocket.MessageBinary, 65536},
	{websocket.MessageBinary, 100000},
}

const (
	closeCode   = websocket.StatusCode(4001)
	closeReason = "bye"
)

// frameLen is the wire size of a single-frame message of n payload bytes.
func frameLen(n int, masked bool) int64 {
	h := int64(2)
	switch {
	case n > 0xFFFF:
		h += 8
	case n > 125:
		h += 2
	}
	if masked {
		h += 4 // masking key, RFC 6455 §5.3
	}
	return h + int64(n)
}

// wantBytes is what the client (masked) or the server (unmasked) puts on
// the wire for all messages and the close frame.
func wantBytes(masked bool) int64 {
	var n int64
	for _, m := range messages {
		n += frameLen(m.size, masked)
	}
	return n + frameLen(2+len(closeReason), masked)
}

// echoServer is a real WebSocket server that echoes every message.
func echoServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer func() { _ = c.CloseNow() }()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return // the library has answered a close frame with its own
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runClient sends every message, checks each echo, waits (by polling) until
// the meter has counted it, and closes with closeCode.
func runClient(t *testing.T, wsURL string, conns <-chan *wsmeter.Conn) *wsmeter.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = c.CloseNow() }()
	c.SetReadLimit(1 << 20)
	var mc *wsmeter.Conn
	select {
	case mc = <-conns:
	case <-ctx.Done():
		t.Fatal("the proxy never wrapped the connection")
	}
	for i, m := range messages {
		payload := bytes.Repeat([]byte{byte('a' + i)}, m.size)
		if err := c.Write(ctx, m.typ, payload); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		typ, echo, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(echo, payload) {
			t.Fatalf("echo %d: type %v, %d bytes, %v", i, typ, len(echo), err)
		}
		// The proxy meters a write after it returns, so the client may see
		// the echo first: poll until both directions have counted it.
		waitFor(ctx, t, func() bool {
			return mc.In().Messages == int64(i+1) && mc.Out().Messages == int64(i+1)
		})
	}
	if err := c.Close(closeCode, closeReason); err != nil {
		t.Fatalf("close: %v", err)
	}
	return mc
}

func waitFor(ctx context.Context, t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("condition not met before the deadline")
		}
	}
}

// checkStats asserts what both directions saw over the whole session.
func checkStats(t *testing.T, in, out wsmeter.Stats) {
	t.Helper()
	n := int64(len(messages))
	// Client to upstream: masked frames, the client's close frame first.
	if in.Messages != n || in.Frames != n+1 || in.CloseCode != int(closeCode) ||
		in.CloseReasonLen != len(closeReason) || in.Bytes != wantBytes(true) || in.Err != nil {
		t.Errorf("In() = %+v; want %d messages, %d frames, close %d, %d bytes", in, n, n+1, closeCode, wantBytes(true))
	}
	// Upstream to client: the echoes, then the server's reply to the close,
	// which repeats the client's code and reason (RFC 6455 §5.5.1).
	if out.Messages != n || out.Frames != n+1 || out.CloseCode != int(closeCode) ||
		out.CloseReasonLen != len(closeReason) || out.Bytes != wantBytes(false) || out.Err != nil {
		t.Errorf("Out() = %+v; want %d messages, %d frames, close %d, %d bytes", out, n, n+1, closeCode, wantBytes(false))
	}
}

// copyHead relays one HTTP head (up to the blank line) byte by byte, so
// nothing after it is consumed before the connection is wrapped.
func copyHead(dst io.Writer, src io.Reader) error {
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if len(head) > 16<<10 {
			return errors.New("HTTP head too long")
		}
		if _, err := io.ReadFull(src, b); err != nil {
			return err
		}
		head = append(head, b[0])
	}
	_, err := dst.Write(head)
	return err
}

// copied is what the TCP proxy moved after the handshake.
type copied struct{ toUpstream, toClient int64 }

// tcpProxy accepts one connection, relays the upgrade handshake, wraps the
// client conn with wsmeter.NewConn and copies bytes both ways, half-closing
// as each side ends, like httputil.ReverseProxy does.
func tcpProxy(t *testing.T, upstream string) (addr string, conns <-chan *wsmeter.Conn, result <-chan copied) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	connc, resc := make(chan *wsmeter.Conn, 1), make(chan copied, 1)
	go func() {
		client, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = client.Close() }()
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = up.Close() }()
		deadline := time.Now().Add(30 * time.Second)
		_ = client.SetDeadline(deadline)
		_ = up.SetDeadline(deadline)
		if herr := copyHead(up, client); herr != nil {
			t.Errorf("request head: %v", herr)
			return
		}
		if herr := copyHead(client, up); herr != nil {
			t.Errorf("response head: %v", herr)
			return
		}
		mc := wsmeter.NewConn(client)
		connc <- mc
		toUp := make(chan int64, 1)
		go func() {
			n, cerr := io.Copy(up, mc)
			if cerr != nil {
				t.Errorf("client to upstream: %v", cerr)
			}
			_ = up.(*net.TCPConn).CloseWrite()
			toUp <- n
		}()
		n, err := io.Copy(mc, up)
		if err != nil {
			t.Errorf("upstream to client: %v", err)
		}
		if err := mc.CloseWrite(); err != nil {
			t.Errorf("CloseWrite through the wrapper: %v", err)
		}
		resc <- copied{toUpstream: <-toUp, toClient: n}
	}()
	return ln.Addr().String(), connc, resc
}

// TestRoundTripTCPProxy runs a real coder/websocket client and server through
// a byte-copying proxy that meters the client side.
func TestRoundTripTCPProxy(t *testing.T) {
	srv := echoServer(t)
	addr, conns, result := tcpProxy(t, srv.Listener.Addr().String())
	mc := runClient(t, "ws://"+addr, conns)

	var got copied
	select {
	case got = <-result:
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not finish copying")
	}
	in, out := mc.In(), mc.Out()
	if in.Bytes != got.toUpstream || out.Bytes != got.toClient {
		t.Errorf("metered %d/%d bytes, proxy copied %d/%d", in.Bytes, out.Bytes, got.toUpstream, got.toClient)
	}
	checkStats(t, in, out)
}

// meteredWriter makes Hijack return a metered conn. The *bufio.ReadWriter
// still writes to the raw conn, so httputil.ReverseProxy's 101 response goes
// around the meter and the meter sees frames only.
type meteredWriter struct {
	http.ResponseWriter
	conns chan<- *wsmeter.Conn
}

func (w *meteredWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	mc := wsmeter.NewConn(c)
	w.conns <- mc
	return mc, brw, nil
}

// TestRoundTripReverseProxy meters the connection the way tracecar's inbound
// proxy does: httputil.ReverseProxy hijacks through a wrapping ResponseWriter.
func TestRoundTripReverseProxy(t *testing.T) {
	backend := echoServer(t)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	conns := make(chan *wsmeter.Conn, 1)
	served := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		rp.ServeHTTP(&meteredWriter{ResponseWriter: w, conns: conns}, r)
	}))
	t.Cleanup(front.Close)

	mc := runClient(t, "ws"+strings.TrimPrefix(front.URL, "http"), conns)
	select {
	case <-served: // both copy loops have ended (CloseWrite passed through)
	case <-time.After(30 * time.Second):
		t.Fatal("ReverseProxy did not finish the upgraded connection")
	}
	checkStats(t, mc.In(), mc.Out())
}
