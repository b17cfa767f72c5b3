package load

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// grpcEcho answers UnaryCall with the request payload cut to trim bytes
// (all of it when trim is 0) and records the callers' connections.
type grpcEcho struct {
	testgrpc.UnimplementedTestServiceServer
	trim  int
	mu    sync.Mutex
	calls int
	conns map[string]bool
}

func (s *grpcEcho) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.mu.Lock()
	s.calls++
	if p, ok := peer.FromContext(ctx); ok {
		s.conns[p.Addr.String()] = true
	}
	s.mu.Unlock()
	body := req.GetPayload().GetBody()
	if s.trim > 0 {
		body = body[:s.trim]
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: body}}, nil
}

func grpcServer(t *testing.T, svc *grpcEcho) string {
	t.Helper()
	svc.conns = map[string]bool{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, svc)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return "http://" + ln.Addr().String()
}

// TestGRPCOpenLoop: every scheduled call is made, answered with the 1 KiB
// payload echoed, over one connection per worker.
func TestGRPCOpenLoop(t *testing.T) {
	svc := &grpcEcho{}
	url := grpcServer(t, svc)
	res, err := Run(context.Background(), Options{
		URL: url, Proto: ProtoGRPC, ExpectBytes: 1024, Rate: 200, Conns: 3,
		Warmup: 50 * time.Millisecond, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Requests != 20 || res.OK != 20 || res.Statuses["grpc OK"] != 20 {
		t.Fatalf("valid %v (%s), %d ok of %d, statuses %v; want 20 ok", res.Valid, res.InvalidReason, res.OK, res.Requests, res.Statuses)
	}
	if res.Method != GRPCMethod || res.Proto != ProtoGRPC {
		t.Fatalf("method %q proto %q", res.Method, res.Proto)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.calls != int(res.Total) || len(svc.conns) != 3 {
		t.Fatalf("server saw %d calls on %d connections; want %d on 3", svc.calls, len(svc.conns), res.Total)
	}
}

// TestGRPCClosedLoop keeps the calls coming on every connection.
func TestGRPCClosedLoop(t *testing.T) {
	svc := &grpcEcho{}
	url := grpcServer(t, svc)
	res, err := Run(context.Background(), Options{
		URL: url, Proto: ProtoGRPC, Mode: ModeClosed, BodySize: 64, ExpectBytes: 64, Conns: 2,
		Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Requests == 0 || res.OK != res.Requests || res.AchievedRPS <= 0 {
		t.Fatalf("closed loop: valid %v (%s), %d ok of %d, %.0f rps", res.Valid, res.InvalidReason, res.OK, res.Requests, res.AchievedRPS)
	}
}

// TestGRPCWrongSize: a payload of the wrong size is an error, and the run
// invalid.
func TestGRPCWrongSize(t *testing.T) {
	url := grpcServer(t, &grpcEcho{trim: 10})
	res, err := Run(context.Background(), Options{
		URL: url, Proto: ProtoGRPC, ExpectBytes: 1024, Rate: 200, Conns: 1,
		Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid || res.Errors != 10 || len(res.ErrorSamples) != 1 || !strings.Contains(res.ErrorSamples[0], "10 bytes, want 1024") {
		t.Fatalf("valid %v, %d errors, samples %q; want invalid, 10 errors of 10 bytes", res.Valid, res.Errors, res.ErrorSamples)
	}
}

// TestGRPCNoServer: a target nobody answers fails the run before it starts.
func TestGRPCNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = Run(context.Background(), Options{URL: "http://" + addr, Proto: ProtoGRPC, Conns: 1, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("err = %v, want not ready", err)
	}
}

func TestGRPCTarget(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080":  "127.0.0.1:8080",
		"http://127.0.0.1:8080/": "127.0.0.1:8080",
		"http://[::1]:9":         "[::1]:9",
	} {
		if got, err := grpcTarget(raw); err != nil || got != want {
			t.Errorf("grpcTarget(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "127.0.0.1:8080", "https://h:1", "http://h:1/x", "ws://h:1", "http://u@h:1", "http://"} {
		if got, err := grpcTarget(raw); err == nil {
			t.Errorf("grpcTarget(%q) = %q, want an error", raw, got)
		}
	}
}
