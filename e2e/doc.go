// Package e2e holds black-box tests of the built sidecar: they build the
// sidecar and the demo app, start them with a Jaeger built from source, send
// traffic over loopback sockets and read the traces back from Jaeger's query
// API. They import nothing from this module.
//
// Jaeger is taken from $TRACECAR_JAEGER_BIN, else ../bin/jaeger
// (`make bin/jaeger` builds it). Run with `go test -race ./e2e/`.
package e2e
