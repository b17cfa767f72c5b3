package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// errBadBody is wrapped when an answer's size is not ExpectBytes.
var errBadBody = errors.New("unexpected body size")

// doer sends one request (WebSocket message, gRPC call) on its own
// connection and waits for the whole answer. status labels the answer for
// Result.Statuses, "" when none came.
type doer interface {
	do(ctx context.Context, seq int) (status string, err error)
	close()
}

func newDoer(ctx context.Context, o *Options, _ int) (doer, error) {
	if o.Proto == ProtoGRPC {
		return dialGRPC(ctx, o)
	}
	tr, err := transport(o)
	if err != nil {
		return nil, err
	}
	if o.Proto == ProtoWS {
		return dialWS(ctx, o, tr)
	}
	body := bytes.Repeat([]byte("x"), o.BodySize)
	return &httpDoer{o: o, client: &http.Client{Transport: tr, Timeout: o.Timeout}, body: body, keyPrefix: runID()}, nil
}

// transport is a one-connection transport: the worker sends one request at
// a time, so every worker keeps exactly one connection open.
func transport(o *Options) (*http.Transport, error) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1,
		MaxIdleConnsPerHost:   1,
		MaxConnsPerHost:       1,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		DisableCompression:    true,
	}
	if o.Proxy != "" {
		u, err := url.Parse(o.Proxy)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("load: proxy %q: want http://host:port", o.Proxy)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	if o.Proto == ProtoH2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr, nil
}

// runID prefixes this worker's Idempotency-Keys, unique across runs.
func runID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

type httpDoer struct {
	o         *Options
	client    *http.Client
	body      []byte
	keyPrefix string
}

// httpStatus labels an HTTP answer; the usual one without an allocation.
func httpStatus(code int) string {
	if code == http.StatusOK {
		return "200"
	}
	return strconv.Itoa(code)
}

func (d *httpDoer) do(ctx context.Context, seq int) (string, error) {
	var body io.Reader
	if len(d.body) > 0 {
		body = bytes.NewReader(d.body)
	}
	req, err := http.NewRequestWithContext(ctx, d.o.Method, d.o.URL, body)
	if err != nil {
		return "", err
	}
	if len(d.body) > 0 {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if d.o.IdempotencyKeys {
		req.Header.Set("Idempotency-Key", d.keyPrefix+"-"+strconv.Itoa(seq))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	status := httpStatus(resp.StatusCode)
	switch {
	case err != nil:
		return status, err
	case resp.StatusCode != http.StatusOK:
		return status, fmt.Errorf("status %d", resp.StatusCode)
	case d.o.ExpectBytes > 0 && n != int64(d.o.ExpectBytes):
		return status, fmt.Errorf("%w: %d bytes, want %d", errBadBody, n, d.o.ExpectBytes)
	}
	return status, nil
}

func (d *httpDoer) close() { d.client.CloseIdleConnections() }

type wsDoer struct {
	o    *Options
	conn *websocket.Conn
	msg  []byte
}

func dialWS(ctx context.Context, o *Options, tr *http.Transport) (*wsDoer, error) {
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, o.URL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("load: WebSocket %s: %w", o.URL, err)
	}
	conn.SetReadLimit(int64(max(o.BodySize, 1024)) * 2)
	return &wsDoer{o: o, conn: conn, msg: bytes.Repeat([]byte("x"), o.BodySize)}, nil
}

// do writes one binary message and reads its echo. The connection's
// context is the run's: coder/websocket closes a connection whose read
// context ends, so a per-message timeout would cost the connection.
func (d *wsDoer) do(ctx context.Context, _ int) (string, error) {
	if err := d.conn.Write(ctx, websocket.MessageBinary, d.msg); err != nil {
		return "", err
	}
	_, data, err := d.conn.Read(ctx)
	if err != nil {
		return "", err
	}
	if d.o.ExpectBytes > 0 && len(data) != d.o.ExpectBytes {
		return "", fmt.Errorf("%w: %d bytes, want %d", errBadBody, len(data), d.o.ExpectBytes)
	}
	return "101", nil
}

func (d *wsDoer) close() { _ = d.conn.Close(websocket.StatusNormalClosure, "") }
