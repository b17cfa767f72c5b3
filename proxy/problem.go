package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Problem is an RFC 9457 problem details object, the body of every response
// tracecar itself generates (as opposed to relaying the app's).
type Problem struct {
	// Type is a URI naming the problem type; "about:blank" when empty
	// (RFC 9457 §4.2.1).
	Type string `json:"type,omitempty"`
	// Title is a short, human-readable summary of the problem type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence: what failed and why.
	Detail string `json:"detail,omitempty"`
	// Upstream names the upstream involved, when there is one (extension
	// member, RFC 9457 §3.2).
	Upstream string `json:"upstream,omitempty"`
	// TraceID and CorrelationID let a caller quote the failed request.
	TraceID       string `json:"trace_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// ContentTypeProblem is the media type of problem bodies (RFC 9457 §3).
const ContentTypeProblem = "application/problem+json"

// ProblemFor builds the problem for an error returned by Classify.
func ProblemFor(err error, upstream string) Problem {
	status := Status(err)
	p := Problem{
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   err.Error(),
		Upstream: upstream,
	}
	p.RetryAfter, _ = RetryAfter(err)
	return p
}

// WriteProblem writes p as the response. Headers already set on w (the
// correlation ID, traceresponse) are kept.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: every field is a string or an int
		body = []byte(`{"title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	if p.RetryAfter > 0 {
		// RFC 9110 §10.2.3: delay-seconds, rounded up so nobody retries early.
		h.Set("Retry-After", strconv.FormatInt(int64((p.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body) // the client may be gone; there is nobody left to tell
}
