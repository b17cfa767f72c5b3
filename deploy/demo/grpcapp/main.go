// Command demo-grpcapp is a small gRPC service that the e2e tests put behind
// the sidecar. It serves grpc.testing.TestService (EmptyCall and UnaryCall),
// is instrumented with the OpenTelemetry SDK and otelgrpc stats handlers, and
// exports its spans over OTLP/HTTP, so its spans nest under the sidecar's in
// Jaeger.
//
// UnaryCall answers with a payload of the requested size, or, when
// -downstream is set, calls the downstream's UnaryCall through the sidecar's
// gRPC egress proxy (-egress, the destination named by :authority) and
// answers with the downstream's reply. Every reply's server_id is the
// address of the process that made the payload.
//
// Configuration: -addr, -downstream, -egress and the standard OTEL_*
// variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/tracecar/tracecar/deploy/demo/internal/demotel"
)

// maxPayload bounds the payload size a caller may ask for.
const maxPayload = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	downstream := flag.String("downstream", "", "host:port of the TestService UnaryCall forwards to (optional)")
	egress := flag.String("egress", "", "the sidecar's gRPC egress proxy, host:port; dialed instead of -downstream when set")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*addr, *downstream, *egress, log); err != nil {
		log.Error("demo-grpcapp stopped", "error", err)
		os.Exit(1)
	}
}

func run(addr, downstream, egress string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tp, err := demotel.NewTracerProvider(ctx, "demo-grpcapp")
	if err != nil {
		return err
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)

	svc := &service{addr: addr, log: log}
	if downstream != "" {
		target := downstream
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))),
		}
		if egress != "" {
			// The sidecar's egress proxy routes by :authority.
			target = egress
			opts = append(opts, grpc.WithAuthority(downstream))
		}
		conn, err := grpc.NewClient(target, opts...)
		if err != nil {
			return fmt.Errorf("downstream client: %w", err)
		}
		defer func() { _ = conn.Close() }()
		svc.downstream = testgrpc.NewTestServiceClient(conn)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))
	testgrpc.RegisterTestServiceServer(srv, svc)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("demo-grpcapp listening", "addr", addr, "downstream", downstream, "egress", egress)

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("demo-grpcapp shutting down")
		srv.GracefulStop()
		err = <-errc
	}
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	// Flush the spans still queued in the batch processor.
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, tp.Shutdown(fctx))
}

// service implements EmptyCall and UnaryCall of grpc.testing.TestService.
type service struct {
	testgrpc.UnimplementedTestServiceServer
	addr       string
	log        *slog.Logger
	downstream testgrpc.TestServiceClient // nil without -downstream
}

// EmptyCall answers at once; it doubles as a readiness probe.
func (s *service) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

// UnaryCall forwards to the downstream when there is one (with the incoming
// context, so otelgrpc continues this call's trace), else answers with a
// payload of the requested size.
func (s *service) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	sc := trace.SpanContextFromContext(ctx)
	s.log.Info("UnaryCall", "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String(),
		"response_size", in.GetResponseSize())
	if s.downstream != nil {
		return s.downstream.UnaryCall(ctx, in)
	}
	size := in.GetResponseSize()
	if size < 0 || size > maxPayload {
		return nil, status.Errorf(codes.InvalidArgument, "response_size %d is outside 0..%d", size, maxPayload)
	}
	return &testgrpc.SimpleResponse{
		Payload:  &testgrpc.Payload{Body: make([]byte, size)},
		ServerId: s.addr,
	}, nil
}
