// Command backend is the application behind the proxies in tracecar's
// benchmark: fixed responses and echoes, over HTTP/1.1 and h2c, and gRPC
// over h2c, all on one loopback port (the sidecar has one upstream).
//
//	GET  /1k    1024 bytes
//	GET  /16k   16384 bytes
//	POST /echo  the request body back (at most 1 MiB)
//	GET  /ws    WebSocket: every message echoed
//	GET  /sse   10 Server-Sent Events, each flushed
//	GET  /ready 204, for start-up polling
//	gRPC grpc.testing.TestService/UnaryCall: the request payload back
//
// gRPC calls (HTTP/2 with content-type application/grpc…) go to a
// grpc.Server through its ServeHTTP, so they ride net/http's HTTP/2 server
// rather than grpc-go's own transport; every configuration meets the same
// backend.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/tracecar/tracecar/bench/internal/serve"
)

// maxEcho bounds an echoed body or message.
const maxEcho = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatalf("backend: %v", err)
	}
}

func run(addr string) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           handler(),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	return serve.Run(addr, srv)
}

func handler() http.Handler {
	oneK := bytes.Repeat([]byte("a"), 1024)
	sixteenK := bytes.Repeat([]byte("b"), 16*1024)
	fixed := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /1k", fixed(oneK))
	mux.HandleFunc("GET /16k", fixed(sixteenK))
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /echo", echo)
	mux.HandleFunc("GET /ws", wsEcho)
	mux.HandleFunc("GET /sse", sse)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxEcho))
	testgrpc.RegisterTestServiceServer(gs, echoService{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// echoService is the gRPC test service; only UnaryCall is implemented.
type echoService struct {
	testgrpc.UnimplementedTestServiceServer
}

// UnaryCall answers with the request's payload.
func (echoService) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if req.GetPayload() == nil {
		return nil, status.Error(codes.InvalidArgument, "no payload to echo")
	}
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEcho))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(body)
}

func wsEcho(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client
	}
	defer func() { _ = conn.CloseNow() }()
	conn.SetReadLimit(maxEcho)
	ctx := r.Context()
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if err := conn.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func sse(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	for i := range 10 {
		if r.Context().Err() != nil {
			return
		}
		fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
		flusher.Flush()
	}
}
