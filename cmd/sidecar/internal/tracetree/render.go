package tracetree

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// maxIndent bounds the indentation of deep trees; deeper spans are drawn at
// this depth with their real depth written out.
const maxIndent = 24

// maxField bounds how many runes of a span-supplied string are printed.
const maxField = 120

// Render writes the trace as an indented tree, one span per line:
//
//	trace 4bf92f3577b34da6a3ce929d0e0e4736: 3 spans, 2 services
//	demo-sidecar: GET (server) 12.41ms ok, HTTP 200
//	└─ demo-app: GET /orders/{id} (server) 10.65ms ok, HTTP 200
//	   └─ demo-app: load order (internal) 10.27ms ok
//
// Write errors are not reported; use WriteTo to see them.
func (t *Trace) Render(w io.Writer) {
	_, _ = t.WriteTo(w)
}

// WriteTo writes what Render shows and reports how many bytes were written.
func (t *Trace) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s: %s, %s\n", t.TraceID,
		plural(len(t.Spans), "span"), plural(len(t.Services()), "service"))
	for _, s := range t.Roots {
		writeSpan(&b, s, "", "", 0)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// writeSpan writes s after the tree prefix lead, and its children below it;
// indent is the prefix their own branches continue from.
func writeSpan(b *strings.Builder, s *Span, lead, indent string, depth int) {
	b.WriteString(lead)
	b.WriteString(orDefault(clean(s.Service), "(unknown service)"))
	b.WriteString(": ")
	b.WriteString(orDefault(clean(s.Operation), "(unnamed)"))
	if k := s.Kind(); k != "" {
		b.WriteString(" (" + clean(k) + ")")
	}
	b.WriteString(" " + formatDuration(s.Duration) + " " + status(s))
	switch {
	case s.ParentLoop:
		b.WriteString(" (parent reference loops back)")
	case s.ParentMissing:
		b.WriteString(" (parent not in trace)")
	}
	if depth > maxIndent {
		b.WriteString(" [depth " + strconv.Itoa(depth) + "]")
	}
	b.WriteByte('\n')

	for i, c := range s.Children {
		branch, next := "├─ ", "│  "
		if i == len(s.Children)-1 {
			branch, next = "└─ ", "   "
		}
		if depth >= maxIndent {
			// Keep the line length bounded: stop drawing deeper levels.
			next = ""
		}
		writeSpan(b, c, indent+branch, indent+next, depth+1)
	}
}

// status is "ok" or "error", with the status description and HTTP status code
// when the span has them.
func status(s *Span) string {
	st := "ok"
	if s.IsError() {
		st = "error"
		if d, ok := s.Tag("otel.status_description"); ok && d != "" {
			st += " " + strconv.Quote(truncate(d))
		}
	}
	if c := s.HTTPStatus(); c != "" {
		st += ", HTTP " + clean(c)
	}
	return st
}

// formatDuration prints µs below a millisecond, ms with two decimals below a
// second, and seconds with three decimals above.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
	}
}

// clean makes a span-supplied string safe for a terminal: control characters
// (escape sequences, newlines) become U+FFFD and the length is bounded.
func clean(s string) string {
	s = truncate(s)
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

func truncate(s string) string {
	if len(s) <= maxField {
		return s
	}
	n := 0
	for i := range s {
		if n == maxField {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
