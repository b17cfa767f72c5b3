// Package e2e holds black-box tests of the built sidecar: they build the
// sidecar and the demo app, start them with a Jaeger built from source, send
// traffic over loopback sockets, read the traces back from Jaeger's query
// API and the sidecar's metrics from its admin listener. They import nothing
// from this module.
//
// TestMain starts Jaeger, the demo app behind the sidecar (the app's
// HTTP_PROXY is the sidecar's egress proxy, serial inference on) and a
// second demo app as the first one's downstream. Tests that need other
// settings start a sidecar and an app of their own for their duration. The
// tests that depend on how many requests are in flight (stitching, the
// cascade) never run in parallel.
//
// Jaeger is taken from $TRACECAR_JAEGER_BIN, else ../bin/jaeger
// (`make bin/jaeger` builds it). Run with `go test -race ./e2e/`.
package e2e
