// Package stitch remembers tracecar's inbound requests by correlation ID so
// that the egress proxy can parent an outbound call under the inbound request
// that caused it, even when the app forwards only a correlation or request ID
// and drops traceparent (which Envoy, Istio and Linkerd all require the app
// to copy).
//
// The inbound side calls [Registry.Begin] when a request arrives and the
// returned end function when its response is done; the entry is then kept
// for Settings.TTL. The egress side calls [Registry.Lookup] with the
// correlation ID of an outbound request, or [Registry.Sole] for serial
// inference (exactly one inbound request in flight).
//
// The registry is bounded: when it is full, the oldest finished entry is
// evicted; in-flight entries are never evicted, and a new entry that finds
// every slot in flight is not remembered (counted in
// tracecar_stitch_full_total). The package uses only the OTel trace API.
package stitch
