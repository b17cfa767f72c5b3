package egress

import (
	"net/http"
	"testing"

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
