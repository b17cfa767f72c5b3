package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// TestOnePortServesHTTPAndGRPC: gRPC calls and plain HTTP requests, over
// HTTP/1.1 and h2c, share the backend's one port.
func TestOnePortServesHTTPAndGRPC(t *testing.T) {
	srv := httptest.NewUnstartedServer(handler())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()

	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(srv.URL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := testgrpc.NewTestServiceClient(conn)
	payload := bytes.Repeat([]byte{0x5a}, 1024)
	resp, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: payload}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), payload) {
		t.Fatalf("UnaryCall answered %d bytes, want the 1024 sent", len(resp.GetPayload().GetBody()))
	}
	_, err = client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("UnaryCall without a payload: %v, want InvalidArgument", err)
	}
	_, err = client.EmptyCall(context.Background(), &testgrpc.Empty{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("EmptyCall: %v, want Unimplemented", err)
	}

	for name, h2c := range map[string]bool{"HTTP/1.1": false, "h2c": true} {
		tr := &http.Transport{}
		if h2c {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		res, err := (&http.Client{Transport: tr}).Get(srv.URL + "/1k")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		wantMajor := 1
		if h2c {
			wantMajor = 2
		}
		if res.StatusCode != http.StatusOK || len(body) != 1024 || res.ProtoMajor != wantMajor {
			t.Fatalf("%s GET /1k: %s, %d bytes, HTTP/%d; want 200, 1024 bytes, HTTP/%d", name, res.Status, len(body), res.ProtoMajor, wantMajor)
		}
		tr.CloseIdleConnections()
	}
}
