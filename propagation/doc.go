// Package propagation carries trace context and correlation IDs across
// process boundaries for tracecar, independent of the wire protocol.
//
// It uses only the OpenTelemetry API (trace, propagation, attribute); the SDK
// is wired in cmd/sidecar.
//
// # W3C Trace Context
//
// [TraceContext] is a strict W3C Trace Context Level 1 propagator
// (https://www.w3.org/TR/trace-context-1/) implementing
// go.opentelemetry.io/otel/propagation.TextMapPropagator. The parsers
// [ParseTraceparent] and [ParseTracestate] are usable on their own, and
// [AppendTraceparent] / [AppendTraceresponse] format without allocating.
//
// The stock go.opentelemetry.io/otel/propagation.TraceContext (v1.47.0) was
// checked against the specification and the W3C conformance suite
// (w3c/trace-context test/test.py). It falls short on these points, which this
// package handles differently:
//
//   - Duplicate traceparent fields: the stock propagator reads the carrier with
//     Get, so of two traceparent fields the first one wins. The conformance
//     test test_traceparent_duplicated expects a new trace. Here more than one
//     value (from an [go.opentelemetry.io/otel/propagation.ValuesGetter]
//     carrier) or a value containing a comma is invalid and no remote context
//     is extracted.
//   - Multiple tracestate fields: the stock propagator keeps only the first
//     one, although §3.3.1.1 says they MUST be combined. An empty first field
//     followed by "foo=1" therefore loses foo. Here all values are combined.
//   - Empty and whitespace-only list-members (§3.3.1.1 "are allowed"):
//     trace.ParseTraceState rejects a whitespace-only member such as the one
//     in "foo=1, ,bar=2" and the whole tracestate is dropped. Here such
//     members are skipped.
//   - Unknown trace-flags in version 00: the stock propagator rejects the
//     whole traceparent when a flag other than sampled or random is set
//     ("…-09"), and passes the Level 2 random bit on. Level 1 defines only the
//     sampled flag and says other flags MUST be set to zero by senders; an
//     unknown bit does not make the field invalid. Here only the sampled bit
//     is read and written.
//   - Optional whitespace around the traceparent value (conformance test
//     test_traceparent_ows_handling): rejected by the stock propagator.
//     net/http trims it before the carrier sees it, but other carriers may
//     not, so it is trimmed here.
//
// On the rest (version ff, lengths, lowercase hex, all-zero IDs, the key and
// value grammar, 32 list-members, duplicate keys) the stock code and this one
// agree; the table tests in this package cite the rule for each case.
//
// # Correlation IDs
//
// [Correlation] reads a caller's correlation ID from a configurable field
// (X-Correlation-Id by default), falling back to X-Request-Id. IDs that fail
// [ValidCorrelationID] or repeat are reported as not ok, so the caller mints a
// fresh one with [MintCorrelationID] instead of passing them on.
// [ContextWithCorrelationID] and [CorrelationIDFromContext] carry the result
// through a request.
package propagation
