// Package tracetree reads one trace back from Jaeger's query API
// (GET /api/traces/{id}) and prints it as an indented span tree: service,
// operation, span kind, duration and status for every span, root first and
// children in start order. `sidecar trace <trace-id>` is built on it.
package tracetree

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ErrMalformed reports a query API answer that is not the JSON Jaeger documents.
var ErrMalformed = errors.New("malformed Jaeger response")

// Trace is one trace as Jaeger returned it, arranged as a tree.
type Trace struct {
	// TraceID is the trace's ID as 32 lowercase hex digits.
	TraceID string
	// Spans holds every span of the trace, ordered by start time.
	Spans []*Span
	// Roots holds the top level of the tree: spans without a parent first,
	// then spans whose parent is not in the trace, each group by start time.
	Roots []*Span
}

// Span is one span of a trace.
type Span struct {
	// SpanID is the span's ID, 16 lowercase hex digits.
	SpanID string
	// ParentSpanID is the span ID of its CHILD_OF reference in the same
	// trace; empty for a root span.
	ParentSpanID string
	// Service is the service.name of the process that recorded the span.
	Service string
	// Operation is the span name.
	Operation string
	// Start is when the span started.
	Start time.Time
	// Duration is how long the span lasted.
	Duration time.Duration
	// Tags holds the span's attributes. Values are string, bool or json.Number.
	Tags map[string]any
	// Children are the spans whose parent is this one, ordered by start time.
	Children []*Span
	// ParentMissing is set when ParentSpanID names a span the trace does not hold
	// (not yet reported, dropped, or in a process that does not export).
	ParentMissing bool
	// ParentLoop is set when following parents from this span comes back to it;
	// the span is then shown at the top level.
	ParentLoop bool
}

// Tag returns the span attribute key as a string, and whether it is present.
func (s *Span) Tag(key string) (string, bool) {
	v, ok := s.Tags[key]
	if !ok {
		return "", false
	}
	return fmt.Sprint(v), true
}

// Kind returns the span kind ("server", "client", "internal", ...), or "".
func (s *Span) Kind() string {
	k, _ := s.Tag("span.kind")
	return k
}

// IsError reports whether the span ended with an error status: otel.status_code
// ERROR, or the OpenTracing-style error=true tag Jaeger derives from it.
func (s *Span) IsError() bool {
	if c, _ := s.Tag("otel.status_code"); strings.EqualFold(c, "ERROR") {
		return true
	}
	e, _ := s.Tag("error")
	return e == "true"
}

// HTTPStatus returns the span's HTTP response status code (semconv
// http.response.status_code, or the older http.status_code), or "".
func (s *Span) HTTPStatus() string {
	if c, ok := s.Tag("http.response.status_code"); ok {
		return c
	}
	c, _ := s.Tag("http.status_code")
	return c
}

// Services returns the distinct service names in the trace, in first-start order.
func (t *Trace) Services() []string {
	var out []string
	for _, s := range t.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	return out
}

// Jaeger query API JSON (the shape of /api/traces/{id}); only what is shown.
type apiResponse struct {
	Data   []apiTrace `json:"data"`
	Errors []apiError `json:"errors"`
}

type apiError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

type apiTrace struct {
	TraceID   string                `json:"traceID"`
	Spans     []apiSpan             `json:"spans"`
	Processes map[string]apiProcess `json:"processes"`
}

type apiSpan struct {
	SpanID        string   `json:"spanID"`
	TraceID       string   `json:"traceID"`
	OperationName string   `json:"operationName"`
	References    []apiRef `json:"references"`
	StartTime     int64    `json:"startTime"` // µs since the Unix epoch
	Duration      int64    `json:"duration"`  // µs
	Tags          []apiTag `json:"tags"`
	ProcessID     string   `json:"processID"`
}

type apiRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type apiTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type apiProcess struct {
	ServiceName string `json:"serviceName"`
}

// Decode reads a query API answer for one trace and builds its tree. An answer
// without trace data gives a Trace with no spans.
func Decode(r io.Reader) (*Trace, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var resp apiResponse
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(resp.Data) == 0 {
		return &Trace{}, nil
	}
	at := resp.Data[0]
	t := &Trace{TraceID: canonicalID(at.TraceID, 32)}
	for i, as := range at.Spans {
		if as.SpanID == "" {
			return nil, fmt.Errorf("%w: span %d has no spanID", ErrMalformed, i)
		}
		s := &Span{
			SpanID:    canonicalID(as.SpanID, 16),
			Service:   at.Processes[as.ProcessID].ServiceName,
			Operation: as.OperationName,
			Start:     time.UnixMicro(as.StartTime),
			Duration:  time.Duration(max(as.Duration, 0)) * time.Microsecond,
			Tags:      make(map[string]any, len(as.Tags)),
		}
		for _, tag := range as.Tags {
			s.Tags[tag.Key] = tag.Value
		}
		for _, ref := range as.References {
			// Jaeger stores the OTel parent as a CHILD_OF reference; links to
			// other spans arrive as FOLLOWS_FROM and are not parents.
			if ref.RefType == "CHILD_OF" && (ref.TraceID == "" || canonicalID(ref.TraceID, 32) == t.TraceID) {
				s.ParentSpanID = canonicalID(ref.SpanID, 16)
				break
			}
		}
		t.Spans = append(t.Spans, s)
	}
	t.link()
	return t, nil
}

// canonicalID lower-cases a hex ID and restores the leading zeros Jaeger drops
// (it prints a trace ID whose high 64 bits are zero as 16 digits).
func canonicalID(id string, width int) string {
	id = strings.ToLower(id)
	if len(id) < width {
		id = strings.Repeat("0", width-len(id)) + id
	}
	return id
}

// link arranges t.Spans into a tree: Children, Roots, ParentMissing, ParentLoop.
func (t *Trace) link() {
	byStart := func(a, b *Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID, b.SpanID)
	}
	slices.SortStableFunc(t.Spans, byStart)

	index := make(map[string]*Span, len(t.Spans))
	for _, s := range t.Spans {
		if _, dup := index[s.SpanID]; !dup {
			index[s.SpanID] = s
		}
	}
	var roots, orphans []*Span
	for _, s := range t.Spans {
		switch p, ok := index[s.ParentSpanID]; {
		case s.ParentSpanID == "":
			roots = append(roots, s)
		case !ok || p == s:
			s.ParentMissing = true
			orphans = append(orphans, s)
		default:
			p.Children = append(p.Children, s) // in start order, as t.Spans is
		}
	}

	// Spans not reachable from the top level sit on a parent loop; lift the
	// earliest of each loop to the top level so every span is shown once.
	seen := make(map[*Span]bool, len(t.Spans))
	mark := func(s *Span) {
		stack := []*Span{s}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[n] {
				continue
			}
			seen[n] = true
			stack = append(stack, n.Children...)
		}
	}
	for _, s := range roots {
		mark(s)
	}
	for _, s := range orphans {
		mark(s)
	}
	for _, s := range t.Spans {
		if seen[s] {
			continue
		}
		p := index[s.ParentSpanID]
		p.Children = slices.DeleteFunc(p.Children, func(c *Span) bool { return c == s })
		s.ParentLoop = true
		orphans = append(orphans, s)
		mark(s)
	}
	t.Roots = append(roots, orphans...)
}
