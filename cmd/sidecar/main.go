// Command sidecar is tracecar's proxy: it sits in front of one service,
// continues or starts a W3C trace on every request, keeps a correlation ID,
// and exports spans over OTLP.
//
//	TRACECAR_UPSTREAM=http://127.0.0.1:8080 OTEL_SERVICE_NAME=orders sidecar
//	sidecar -h                 every variable, its default and meaning
//	sidecar -version
//	sidecar trace <trace-id>   a trace from Jaeger, as a span tree
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/tracecar/tracecar/cmd/sidecar/internal/config"
)

// version is set at build time: -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], env.ToMap(os.Environ()), os.Stdout, os.Stderr, signals))
}

// run is the whole program, minus the process globals, so tests can drive it.
func run(args []string, environ map[string]string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			config.Usage(stdout, "sidecar")
			return exitOK
		case "-version", "--version", "version":
			fmt.Fprintf(stdout, "sidecar %s (%s)\n", version, runtime.Version())
			return exitOK
		case "trace":
			return traceCmd(args[1:], stdout, stderr)
		default:
			fmt.Fprintf(stderr, "sidecar: unknown argument %q; run `sidecar -h` for usage\n", args[0])
			return exitUsage
		}
	}
	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return exitUsage
		}
		return exitFailed
	}
	if err := serve(context.Background(), cfg, stderr, signals); err != nil {
		fmt.Fprintf(stderr, "sidecar: %v\n", err)
		return exitFailed
	}
	return exitOK
}
