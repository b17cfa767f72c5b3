package load

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// grpcOK labels a successful call in Result.Statuses.
var grpcOK = grpcStatus(codes.OK)

// grpcStatus labels a gRPC answer by its status code.
func grpcStatus(c codes.Code) string { return "grpc " + c.String() }

// grpcTarget is the host:port of a gRPC target URL: cleartext h2c only, so
// http://host:port, with no path beyond "/".
func grpcTarget(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return "", fmt.Errorf("load: gRPC URL %q: want http://host:port (h2c)", raw)
	}
	return u.Host, nil
}

// grpcDoer makes unary calls on its own client connection: one HTTP/2
// connection, one call in flight at a time, like the other doers.
type grpcDoer struct {
	o      *Options
	conn   *grpc.ClientConn
	client testgrpc.TestServiceClient
	req    *testgrpc.SimpleRequest
}

// dialGRPC opens the worker's connection and waits until it is ready, so a
// target that does not answer fails the run before it starts.
func dialGRPC(ctx context.Context, o *Options) (*grpcDoer, error) {
	target, err := grpcTarget(o.URL)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("load: gRPC %s: %w", target, err)
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(dctx, s) {
			_ = conn.Close()
			return nil, fmt.Errorf("load: gRPC %s: not ready (%s): %w", target, s, dctx.Err())
		}
	}
	req := &testgrpc.SimpleRequest{
		ResponseSize: int32(min(o.BodySize, 1<<30)), //nolint:gosec // bounded just above
		Payload:      &testgrpc.Payload{Body: bytes.Repeat([]byte("x"), o.BodySize)},
	}
	return &grpcDoer{o: o, conn: conn, client: testgrpc.NewTestServiceClient(conn), req: req}, nil
}

// do makes one UnaryCall and checks the size of the payload that came back.
func (d *grpcDoer) do(ctx context.Context, _ int) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	resp, err := d.client.UnaryCall(cctx, d.req)
	if err != nil {
		return grpcStatus(status.Code(err)), err
	}
	if n := len(resp.GetPayload().GetBody()); d.o.ExpectBytes > 0 && n != d.o.ExpectBytes {
		return grpcOK, fmt.Errorf("%w: %d bytes, want %d", errBadBody, n, d.o.ExpectBytes)
	}
	return grpcOK, nil
}

func (d *grpcDoer) close() { _ = d.conn.Close() }
