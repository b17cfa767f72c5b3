package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// Service names of the gRPC chain's processes.
const (
	grpcSidecarService    = "e2e-grpc-sidecar"
	grpcAppService        = "e2e-grpc-app"
	grpcDownstreamService = "e2e-grpc-downstream"
)

// unaryMethod is the gRPC method the chain calls, the name of every span in it.
const unaryMethod = "grpc.testing.TestService/UnaryCall"

// dialGRPC opens a plaintext (h2c) client connection to addr, closed when the
// test ends.
func dialGRPC(t *testing.T, addr string) testgrpc.TestServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

// startGRPCApp starts the demo gRPC app for one test and waits until its
// EmptyCall answers. When the test ends the process is stopped; an unclean
// exit or a data race fails the test, and a failed test shows its log.
func startGRPCApp(t *testing.T, name, addr string, args, env []string) {
	t.Helper()
	p, err := startProcess(workDir, name, grpcAppBin, append([]string{"-addr", addr}, args...), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
		if p.logContains("WARNING: DATA RACE") {
			t.Errorf("the race detector fired in %s", p.name)
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	client := dialGRPC(t, addr)
	err = poll(startDeadline, func() (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%w: %s exited during start-up: %v", errGiveUp, p.name, p.err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
			return false, fmt.Errorf("%s not ready at %s: %w", p.name, addr, err)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// spanOf returns the one span of service with the given kind; it fails the
// test when there is not exactly one.
func (tr jaegerTrace) spanOf(t *testing.T, service, kind string) jaegerSpan {
	t.Helper()
	var found []jaegerSpan
	for _, s := range tr.spans {
		if k, _ := s.tag("span.kind"); s.service == service && k == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("trace %s has %d %s spans of %s, want 1:\n%s", tr.id, len(found), kind, service, tr)
	}
	return found[0]
}

// count returns how many spans of service with the given kind the trace has.
func (tr jaegerTrace) count(service, kind string) int {
	n := 0
	for _, s := range tr.spans {
		if k, _ := s.tag("span.kind"); s.service == service && k == kind {
			n++
		}
	}
	return n
}

// TestGRPCChainIsOneTrace: a gRPC caller → sidecar → gRPC app → the sidecar's
// gRPC egress proxy → gRPC downstream is one trace in Jaeger, continuing the
// caller's traceparent, every span under the one that caused it.
func TestGRPCChainIsOneTrace(t *testing.T) {
	t.Parallel()
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	downstreamAddr, appAddr, inboundAddr, adminAddr, egressGRPCAddr := addr(0), addr(1), addr(2), addr(3), addr(5)

	startGRPCApp(t, "grpc-downstream", downstreamAddr, nil,
		append([]string{"OTEL_SERVICE_NAME=" + grpcDownstreamService}, otelEnv...))
	// The app dials the egress proxy lazily, so it may start before the sidecar.
	startGRPCApp(t, "grpc-app", appAddr, []string{"-downstream", downstreamAddr, "-egress", egressGRPCAddr},
		append([]string{"OTEL_SERVICE_NAME=" + grpcAppService}, otelEnv...))
	startTestProcess(t, "grpc-sidecar", sidecarBin, nil, append([]string{
		"OTEL_SERVICE_NAME=" + grpcSidecarService,
		"TRACECAR_UPSTREAM=http://" + appAddr,
		"TRACECAR_INBOUND_ADDR=" + inboundAddr,
		"TRACECAR_ADMIN_ADDR=" + adminAddr,
		"TRACECAR_EGRESS_ADDR=" + addr(4),
		"TRACECAR_EGRESS_GRPC_ADDR=" + egressGRPCAddr,
		"TRACECAR_DRAIN_TIMEOUT=5s",
	}, otelEnv...), "http://"+adminAddr+"/readyz")

	callerTrace, callerSpan := randomHex(t, 16), randomHex(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cid := "e2e-grpc-" + randomHex(t, 4)
	ctx = metadata.AppendToOutgoingContext(ctx,
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01",
		"x-correlation-id", cid)
	const size = 1234
	resp, err := dialGRPC(t, inboundAddr).UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: size})
	if err != nil {
		t.Fatalf("UnaryCall through the sidecar: %v", err)
	}
	if resp.GetServerId() != downstreamAddr || len(resp.GetPayload().GetBody()) != size {
		t.Errorf("reply from %q with a %d-byte payload, want the downstream's (%s) with %d bytes",
			resp.GetServerId(), len(resp.GetPayload().GetBody()), downstreamAddr, size)
	}

	var tr jaegerTrace
	err = poll(traceDeadline, func() (bool, error) {
		got, found, err := getTrace(callerTrace)
		if err != nil || !found {
			return false, fmt.Errorf("trace %s not in Jaeger (err: %v)", callerTrace, err)
		}
		tr = got
		if tr.count(grpcSidecarService, "server") == 0 || tr.count(grpcSidecarService, "client") == 0 ||
			tr.count(grpcAppService, "server") == 0 || tr.count(grpcAppService, "client") == 0 ||
			tr.count(grpcDownstreamService, "server") == 0 {
			return false, fmt.Errorf("trace %s lacks spans: want server and client spans of %s and %s and a server span of %s:\n%s",
				callerTrace, grpcSidecarService, grpcAppService, grpcDownstreamService, tr)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.id != callerTrace {
		t.Errorf("Jaeger trace ID = %s, want the caller's %s", tr.id, callerTrace)
	}

	inbound := tr.spanOf(t, grpcSidecarService, "server")
	if inbound.OperationName != unaryMethod {
		t.Errorf("sidecar server span name = %q, want %q", inbound.OperationName, unaryMethod)
	}
	if p := inbound.parent(); p != callerSpan {
		t.Errorf("sidecar server span's parent = %q, want the caller's span %s\n%s", p, callerSpan, tr)
	}
	wantTag(t, tr, inbound, "rpc.system.name", "grpc")
	wantTag(t, tr, inbound, "rpc.method", unaryMethod)
	wantTag(t, tr, inbound, "rpc.response.status_code", "OK")
	wantTag(t, tr, inbound, "tracecar.correlation_id", cid)

	appServer := tr.spanOf(t, grpcAppService, "server")
	if p := appServer.parent(); p != inbound.SpanID {
		t.Errorf("app server span's parent = %q, want the sidecar's server span %s\n%s", p, inbound.SpanID, tr)
	}
	appClient := tr.spanOf(t, grpcAppService, "client")
	if p := appClient.parent(); p != appServer.SpanID {
		t.Errorf("app client span's parent = %q, want the app's server span %s\n%s", p, appServer.SpanID, tr)
	}

	egress := tr.spanOf(t, grpcSidecarService, "client")
	if egress.OperationName != unaryMethod {
		t.Errorf("sidecar client span name = %q, want %q", egress.OperationName, unaryMethod)
	}
	if p := egress.parent(); p != appClient.SpanID && p != appServer.SpanID {
		t.Errorf("sidecar client span's parent = %q, want the app's client span %s (or its server span %s)\n%s",
			p, appClient.SpanID, appServer.SpanID, tr)
	}
	wantTag(t, tr, egress, "tracecar.parent.source", "propagated")
	wantTag(t, tr, egress, "rpc.response.status_code", "OK")
	wantTag(t, tr, egress, "tracecar.correlation_id", cid)

	down := tr.spanOf(t, grpcDownstreamService, "server")
	if p := down.parent(); p != egress.SpanID {
		t.Errorf("downstream server span's parent = %q, want the sidecar's client span %s\n%s", p, egress.SpanID, tr)
	}
	if down.OperationName != unaryMethod {
		t.Errorf("downstream server span name = %q, want %q", down.OperationName, unaryMethod)
	}
}
