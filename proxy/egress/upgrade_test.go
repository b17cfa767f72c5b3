package egress

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketUpgradeThroughProxy(t *testing.T) {
	d := newDownstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	r := newRig(t)
	c, _, err := websocket.Dial(t.Context(), "ws://"+d.hostPort()+"/ws", &websocket.DialOptions{HTTPClient: r.client})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.CloseNow() }()
	if err := c.Write(t.Context(), websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(t.Context())
	if err != nil || string(msg) != "echo: hi" {
		t.Fatalf("read %q, %v; want the echo", msg, err)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	span := r.onlySpan()
	if v := attr(t, span, "http.response.status_code").AsInt64(); v != http.StatusSwitchingProtocols {
		t.Errorf("status code %d, want 101", v)
	}
	if hasAttr(span, "error.type") {
		t.Errorf("upgrade span has error.type %s", attr(t, span, "error.type").String())
	}
}

// When the destination drops a WebSocket, the app's side is closed too, so
// its reads end at once instead of waiting on a connection nobody serves.
func TestWebSocketDestinationCloseReachesApp(t *testing.T) {
	accepted := make(chan struct{})
	d := newDownstream(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		close(accepted)
		_ = c.CloseNow() // no close frame: the TCP connection just ends
	})
	r := newRig(t)
	c, _, err := websocket.Dial(t.Context(), "ws://"+d.hostPort()+"/ws", &websocket.DialOptions{HTTPClient: r.client})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.CloseNow() }()
	<-accepted
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("read after the destination closed: %v (context %v); want the connection closed", err, ctx.Err())
	}
	if span := r.onlySpan(); attr(t, span, "http.response.status_code").AsInt64() != http.StatusSwitchingProtocols {
		t.Errorf("span status %d, want 101", attr(t, span, "http.response.status_code").AsInt64())
	}
}
