// Package dedupe enforces at-most-once execution per Idempotency-Key and
// keeps the outcome for replay.
//
// It is protocol-neutral: it parses the key, scopes it to a principal,
// method and route, fingerprints the request, and stores claims and
// completed records in a Store. Two stores exist: Memory (one replica: an
// exact in-flight claim map plus a ristretto cache of completed records,
// best effort; see README.md) and Redis (replicas share keys: SET NX PX
// claims and compare-and-set scripts).
//
// The rules follow draft-ietf-httpapi-idempotency-key-header; the HTTP
// status mapping lives with the protocol adapters, not here.
package dedupe
