package tracetree

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxResponseBytes bounds how much of a query API answer Fetch reads.
const MaxResponseBytes = 64 << 20

var (
	// ErrNotFound reports that Jaeger holds no span of the trace (yet).
	ErrNotFound = errors.New("not found in Jaeger")
	// ErrInvalidTraceID reports a trace ID that is not 1 to 32 hex digits.
	ErrInvalidTraceID = errors.New("invalid trace ID")
	// ErrUnavailable reports that the query API could not be reached or
	// answered with a server error; Wait retries it.
	ErrUnavailable = errors.New("query API unavailable")
)

// Poll intervals of Wait: it starts fast and backs off to the maximum.
const (
	firstPoll = 50 * time.Millisecond
	maxPoll   = 500 * time.Millisecond
)

// Fetch reads trace traceID from the Jaeger query API at queryBase (for
// example http://127.0.0.1:16686). A nil client means http.DefaultClient.
// A trace Jaeger does not hold gives an error wrapping ErrNotFound.
func Fetch(ctx context.Context, client *http.Client, queryBase, traceID string) (*Trace, error) {
	id, err := normalizeTraceID(traceID)
	if err != nil {
		return nil, err
	}
	base, err := normalizeBase(queryBase)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/traces/"+id, nil)
	if err != nil {
		return nil, fmt.Errorf("query API request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w at %s: %w", id, ErrUnavailable, base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w at %s: reading answer: %w", id, ErrUnavailable, base, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("trace %s from Jaeger at %s: %w: answer exceeds %d bytes", id, base, ErrMalformed, MaxResponseBytes)
	}

	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("trace %s %w at %s", id, ErrNotFound, base)
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("trace %s: %w at %s: %s%s", id, ErrUnavailable, base, resp.Status, apiMessage(body))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("trace %s: Jaeger at %s answered %s%s", id, base, resp.Status, apiMessage(body))
	}
	t, err := Decode(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("trace %s from Jaeger at %s: %w", id, base, err)
	}
	if len(t.Spans) == 0 {
		return nil, fmt.Errorf("trace %s %w at %s", id, ErrNotFound, base)
	}
	if t.TraceID != id {
		return nil, fmt.Errorf("trace %s from Jaeger at %s: %w: answer holds trace %s", id, base, ErrMalformed, t.TraceID)
	}
	return t, nil
}

// Wait polls Fetch until the trace holds at least minSpans spans (spans reach
// Jaeger in batches, from several processes) or ctx ends. Not-found and
// unavailable answers are retried; other errors end the wait at once. When ctx
// ends first, Wait returns the last trace it read, if any, with an error.
func Wait(ctx context.Context, client *http.Client, queryBase, traceID string, minSpans int) (*Trace, error) {
	minSpans = max(minSpans, 1)
	delay := firstPoll
	var last *Trace
	var lastErr error
	for {
		t, err := Fetch(ctx, client, queryBase, traceID)
		switch {
		case err == nil && len(t.Spans) >= minSpans:
			return t, nil
		case err == nil:
			last, lastErr = t, nil
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable):
			if ctx.Err() == nil {
				lastErr = err
			}
		default:
			return last, err
		}

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			if last != nil {
				return last, fmt.Errorf("trace %s: %d of %d spans in Jaeger when the wait ended: %w",
					last.TraceID, len(last.Spans), minSpans, ctx.Err())
			}
			if lastErr == nil {
				return nil, fmt.Errorf("waiting for trace %s: %w", traceID, ctx.Err())
			}
			return nil, fmt.Errorf("waiting for %d spans: %w (last answer: %w)", minSpans, ctx.Err(), lastErr)
		case <-timer.C:
		}
		delay = min(2*delay, maxPoll)
	}
}

// normalizeTraceID accepts 1 to 32 hex digits, any case, and returns the
// 32-digit lowercase form the query API and the W3C traceparent use.
func normalizeTraceID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w %q: want 1 to 32 hex digits", ErrInvalidTraceID, truncate(id))
	}
	id = canonicalID(id, 32)
	if strings.Trim(id, "0") == "" {
		// W3C Trace Context: all zeros is an invalid trace-id.
		return "", fmt.Errorf("%w %q: all zeros", ErrInvalidTraceID, id)
	}
	return id, nil
}

// normalizeBase checks the query API base URL and drops a trailing slash.
func normalizeBase(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("jaeger query URL %q: want http://host:port (e.g. http://127.0.0.1:16686)", truncate(base))
	}
	return strings.TrimRight(base, "/"), nil
}

// apiMessage returns ": msg" from a query API error body, or "".
func apiMessage(body []byte) string {
	var resp apiResponse
	if json.Unmarshal(body, &resp) != nil || len(resp.Errors) == 0 {
		return ""
	}
	return ": " + clean(resp.Errors[0].Msg)
}
