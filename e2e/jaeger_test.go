package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// traceDeadline bounds how long a test waits for its spans to reach Jaeger.
const traceDeadline = 20 * time.Second

// jaegerAnswer is the part of Jaeger's GET /api/traces/{id} answer the tests read.
type jaegerAnswer struct {
	Data []struct {
		TraceID   string       `json:"traceID"`
		Spans     []jaegerSpan `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`

	service string // resolved from the answer's processes
}

// tag returns the span's tag key as a string ("" when absent) and whether it is present.
func (s jaegerSpan) tag(key string) (string, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value), true
		}
	}
	return "", false
}

// parent returns the span ID of the span's CHILD_OF reference, or "".
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// jaegerTrace is one trace read back from Jaeger.
type jaegerTrace struct {
	id    string
	spans []jaegerSpan
}

// serverSpan returns the one SERVER span of service; it fails the test when
// there is not exactly one.
func (tr jaegerTrace) serverSpan(t *testing.T, service string) jaegerSpan {
	t.Helper()
	var found []jaegerSpan
	for _, s := range tr.spans {
		if kind, _ := s.tag("span.kind"); s.service == service && kind == "server" {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("trace %s has %d server spans of %s, want 1:\n%s", tr.id, len(found), service, tr)
	}
	return found[0]
}

// String lists the spans, for failure messages.
func (tr jaegerTrace) String() string {
	var b strings.Builder
	for _, s := range tr.spans {
		kind, _ := s.tag("span.kind")
		fmt.Fprintf(&b, "  %s %s %q kind=%s parent=%s\n", s.service, s.SpanID, s.OperationName, kind, s.parent())
	}
	return b.String()
}

// getTrace reads trace id from Jaeger; found is false on Jaeger's 404.
func getTrace(id string) (tr jaegerTrace, found bool, err error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(queryURL + "/api/traces/" + id)
	if err != nil {
		return tr, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return tr, false, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return tr, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return tr, false, fmt.Errorf("GET /api/traces/%s: %s: %s", id, resp.Status, body)
	}
	var answer jaegerAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return tr, false, fmt.Errorf("GET /api/traces/%s: %w", id, err)
	}
	if len(answer.Data) == 0 {
		return tr, false, nil
	}
	d := answer.Data[0]
	tr.id = d.TraceID
	for _, s := range d.Spans {
		s.service = d.Processes[s.ProcessID].ServiceName
		tr.spans = append(tr.spans, s)
	}
	return tr, true, nil
}

// waitTrace polls Jaeger until trace id has server spans from both the sidecar
// and the app and at least minSpans spans in all.
func waitTrace(t *testing.T, id string, minSpans int) jaegerTrace {
	t.Helper()
	var tr jaegerTrace
	err := poll(traceDeadline, func() (bool, error) {
		got, found, err := getTrace(id)
		if err != nil || !found {
			return false, fmt.Errorf("trace %s not in Jaeger (err: %v)", id, err)
		}
		tr = got
		if len(tr.spans) < minSpans || !tr.hasServer(sidecarService) || !tr.hasServer(appService) {
			return false, fmt.Errorf("trace %s has %d spans, want >= %d with server spans of %s and %s:\n%s",
				id, len(tr.spans), minSpans, sidecarService, appService, tr)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (tr jaegerTrace) hasServer(service string) bool {
	for _, s := range tr.spans {
		if kind, _ := s.tag("span.kind"); s.service == service && kind == "server" {
			return true
		}
	}
	return false
}
