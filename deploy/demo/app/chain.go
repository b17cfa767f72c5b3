package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// chainTimeout bounds one outbound call of /chain. It is generous on purpose:
// the sidecar's egress proxy, with its own request timeout and circuit
// breaker, is what should decide when a dependency has taken too long.
const chainTimeout = 60 * time.Second

// maxDownstreamBody bounds how much of a downstream's body /chain reads.
const maxDownstreamBody = 1 << 20

// Values of /chain's forward parameter: what the app copies from its inbound
// request to its outbound call.
const (
	forwardCorrelation = "correlation" // only X-Correlation-ID
	forwardTraceparent = "traceparent" // the app's own span context (traceparent, baggage)
	forwardNone        = "none"        // nothing at all
)

// newOutboundClient returns the client of /chain's outbound calls: plain
// net/http, deliberately not otelhttp's transport, so that the app propagates
// only what /chain's forward parameter says, like an app that was never
// instrumented for tracing.
//
// Every request goes through proxyURL (the HTTP_PROXY value; "" means no
// proxy). http.ProxyFromEnvironment is not used because it never proxies
// requests to localhost or loopback addresses, and the demo and the e2e tests
// run every service on 127.0.0.1: the calls would bypass the sidecar.
func newOutboundClient(proxyURL string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if proxyURL != "" {
		u, err := url.Parse(proxyURL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("HTTP_PROXY %q: want http://host:port", proxyURL)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	tr.MaxIdleConnsPerHost = 64 // the default of 2 redials under any concurrency
	return &http.Client{
		Transport: tr,
		Timeout:   chainTimeout,
		// One call per /chain request: a redirect is relayed, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// chainReply is the JSON body of /chain.
type chainReply struct {
	reply
	To      string `json:"to"`
	Forward string `json:"forward"`
	// DownstreamStatus is the status the downstream (or the egress proxy on
	// its behalf) answered with; 0 when no response came.
	DownstreamStatus int `json:"downstream_status,omitempty"`
	// Downstream is the downstream's body when it is JSON (an RFC 9457
	// problem from the egress proxy, for one); DownstreamText otherwise.
	Downstream     json.RawMessage `json:"downstream,omitempty"`
	DownstreamText string          `json:"downstream_text,omitempty"`
	// Error says why no response came.
	Error string `json:"error,omitempty"`
}

// chain calls the URL in ?to= and answers with the downstream's status and
// body. ?forward= says what the outbound call carries from the inbound
// request: "correlation" (default) only X-Correlation-ID, "traceparent" the
// app's own span context, "none" nothing.
func (a *app) chain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	body := chainReply{reply: a.newReply(r), To: q.Get("to"), Forward: q.Get("forward")}
	if body.Forward == "" {
		body.Forward = forwardCorrelation
	}
	to, err := url.Parse(body.To)
	switch {
	case body.To == "":
		body.Error = "missing ?to=<absolute http or https URL>"
	case err != nil || (to.Scheme != "http" && to.Scheme != "https") || to.Host == "":
		body.Error = fmt.Sprintf("?to=%q is not an absolute http or https URL", body.To)
	case body.Forward != forwardCorrelation && body.Forward != forwardTraceparent && body.Forward != forwardNone:
		body.Error = fmt.Sprintf("?forward=%q: want correlation, traceparent or none", body.Forward)
	}
	if body.Error != "" {
		a.writeChain(w, r, http.StatusBadRequest, body)
		return
	}

	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, to.String(), nil)
	if err != nil {
		body.Error = err.Error()
		a.writeChain(w, r, http.StatusBadRequest, body)
		return
	}
	switch body.Forward {
	case forwardCorrelation:
		if cid := r.Header.Get(correlationHeader); cid != "" {
			req.Header.Set(correlationHeader, cid)
		}
	case forwardTraceparent:
		// The app's server span becomes the parent of whatever the call
		// starts (the egress proxy's client span).
		a.prop.Inject(r.Context(), propagation.HeaderCarrier(req.Header))
	}

	resp, err := a.client.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			a.log.Info("request", "method", r.Method, "path", r.URL.Path, "to", body.To, "error", "client went away")
			return
		}
		body.Error = err.Error()
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		a.writeChain(w, r, status, body)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDownstreamBody))
	if err != nil {
		body.Error = "reading the downstream's body: " + err.Error()
	}
	body.DownstreamStatus = resp.StatusCode
	if json.Valid(b) {
		body.Downstream = b
	} else {
		body.DownstreamText = string(b)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra) // an open circuit says when to come back
	}
	a.writeChain(w, r, resp.StatusCode, body)
}

func (a *app) writeChain(w http.ResponseWriter, r *http.Request, status int, body chainReply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		a.log.Warn("write response", "error", err)
	}
	a.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"to", body.To, "forward", body.Forward, "downstream_status", body.DownstreamStatus,
		"trace_id", body.TraceID, "span_id", body.SpanID, "correlation_id", body.CorrelationID)
}

// hang answers only when the client gives up (or the app shuts down): a
// dependency that hangs, for trying timeouts and circuit breaking.
func (a *app) hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		a.log.Info("request", "method", r.Method, "path", r.URL.Path, "error", "client went away")
	case <-a.stopping.Done():
		body := a.newReply(r)
		body.Message = "shutting down"
		a.writeJSON(w, r, http.StatusServiceUnavailable, body)
	}
}
