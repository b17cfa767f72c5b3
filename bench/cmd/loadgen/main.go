// Command loadgen is tracecar's benchmark load generator. It prints JSON
// lines on standard output: {"mark":"start"} when the measured window
// begins, {"mark":"stop"} when it ends, then {"result":{…}}.
//
//	loadgen -url http://127.0.0.1:8080/1k -rate 2000 -conns 64 -warmup 1s -duration 5s
//	loadgen -url http://127.0.0.1:8080/1k -mode closed -conns 64 -duration 5s
//	loadgen -url http://127.0.0.1:9000/1k -proxy http://127.0.0.1:15001   (egress path)
//	loadgen -url ws://127.0.0.1:8080/ws -proto ws -rate 2000
//	loadgen -url http://127.0.0.1:8080 -proto grpc -rate 1000 -conns 16 -expect-bytes 1024
//	loadgen -url http://127.0.0.1:8080 -proto grpc -mode closed -conns 16
//
// With -proto grpc every request is a unary grpc.testing.TestService/UnaryCall
// over h2c carrying -body bytes (default 1024), one client connection per
// -conns.
//
// The exit status is 0 for a valid run, 1 for an invalid one (rate not
// achieved, errors) and 2 when the run could not start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/tracecar/tracecar/bench/internal/load"
)

func main() {
	var o load.Options
	flag.StringVar(&o.URL, "url", "", "target URL (http://; ws:// with -proto ws; http://host:port with -proto grpc)")
	flag.StringVar(&o.Method, "method", "", "HTTP method (default GET, or POST with -body)")
	flag.IntVar(&o.BodySize, "body", 0, "request body, WebSocket message or gRPC payload size in bytes (default 0; 1024 for ws and grpc)")
	flag.IntVar(&o.ExpectBytes, "expect-bytes", 0, "required size of every answer's body (gRPC: response payload); 0 checks none")
	flag.StringVar(&o.Proto, "proto", load.ProtoHTTP1, "http1, h2c, ws or grpc")
	flag.StringVar(&o.Mode, "mode", load.ModeOpen, "open (fixed rate) or closed (fixed concurrency)")
	flag.Float64Var(&o.Rate, "rate", 1000, "open loop: requests per second")
	flag.IntVar(&o.Conns, "conns", 64, "connections, one request in flight on each at most")
	flag.DurationVar(&o.Warmup, "warmup", 1e9, "unmeasured warm-up before the window")
	flag.DurationVar(&o.Duration, "duration", 5e9, "measured window")
	flag.DurationVar(&o.Timeout, "timeout", 10e9, "per-request time limit")
	flag.StringVar(&o.Proxy, "proxy", "", "forward proxy URL every request goes through (not with grpc)")
	flag.BoolVar(&o.IdempotencyKeys, "idempotency-keys", false, "send a unique Idempotency-Key with every request")
	flag.Parse()

	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
	}
	o.OnMark = func(mark string) { emit(map[string]string{"mark": mark}) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		stop()
		os.Exit(2)
	}
	emit(map[string]any{"result": res})
	if !res.Valid {
		fmt.Fprintf(os.Stderr, "loadgen: invalid run: %s\n", res.InvalidReason)
		stop()
		os.Exit(1)
	}
}
