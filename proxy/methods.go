package proxy

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// MethodLabels are the bounded values of a method label: the methods the
// OTel HTTP semantic conventions know, then "_OTHER" for every other one, so
// a client cannot grow the series without bound.
var MethodLabels = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch, "QUERY", "_OTHER",
}

// StatusClassLabels are the values of a status-class label.
var StatusClassLabels = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// KnownMethod reports whether the HTTP semantic conventions name method; a
// span of any other is named "HTTP" and records http.request.method
// "_OTHER" with http.request.method_original.
func KnownMethod(method string) bool {
	return MethodIndex(method) < len(MethodLabels)-1
}

// MethodIndex is method's index in MethodLabels.
func MethodIndex(method string) int {
	for i, m := range MethodLabels[:len(MethodLabels)-1] {
		if m == method {
			return i
		}
	}
	return len(MethodLabels) - 1
}

// RequestCounters are request counters by method and status class,
// resolved once so the request path does no label lookup.
type RequestCounters [len(MethodLabels)][len(StatusClassLabels)]prometheus.Counter

// NewRequestCounters resolves every series of vec, whose labels are
// "method" and "code" (the status class).
func NewRequestCounters(vec *prometheus.CounterVec) *RequestCounters {
	var c RequestCounters
	for i, meth := range MethodLabels {
		for j, class := range StatusClassLabels {
			c[i][j] = vec.WithLabelValues(meth, class)
		}
	}
	return &c
}

// Inc counts one request. Statuses outside 100-599 (the 499 logged for a
// client that hung up, and anything odd) count as 4xx.
func (c *RequestCounters) Inc(method string, status int) {
	class := status/100 - 1
	if class < 0 || class >= len(StatusClassLabels) {
		class = 3
	}
	c[MethodIndex(method)][class].Inc()
}
