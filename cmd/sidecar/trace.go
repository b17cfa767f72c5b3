package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
	"github.com/tracecar/tracecar/cmd/sidecar/internal/tracetree"
)

// traceCmd prints one trace from Jaeger's query API as an indented span tree.
func traceCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sidecar trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jaeger := fs.String("jaeger", config.DefaultJaegerURL, "base URL of Jaeger's query service")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the trace to appear")
	minSpans := fs.Int("min-spans", 1, "wait until the trace has at least this many spans")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sidecar trace [-jaeger URL] [-wait 10s] [-min-spans N] <trace-id>")
		fs.PrintDefaults()
	}
	// Accept the trace ID before or after the flags.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	t, err := tracetree.Wait(ctx, client, *jaeger, id, *minSpans)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar trace: %v\n", err)
		return exitFailed
	}
	t.Render(stdout)
	return exitOK
}
