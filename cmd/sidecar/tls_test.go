package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and its key, to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "tracecar test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed into place, as a Secret volume updates.
	for name, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(name+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".new", name); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// echoService answers UnaryCall with the request's payload.
type echoService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echoService) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

// startMixedApp serves HTTP on / and the gRPC interop TestService on one
// h2c port, as an app behind the sidecar would.
func startMixedApp(t *testing.T) string {
	t.Helper()
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, echoService{})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				gs.ServeHTTP(w, r)
				return
			}
			_, _ = io.WriteString(w, "hello over "+r.Proto)
		})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); gs.Stop() })
	return ln.Addr().String()
}

// With a certificate the inbound listener serves HTTP/1.1, HTTP/2 and gRPC
// over TLS on one port, and picks up a rotated certificate without a
// restart.
func TestInboundTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, 1)
	inbound, _, _, _, _ := startSidecar(t, map[string]string{
		"TRACECAR_UPSTREAM":      "http://" + startMixedApp(t),
		"TRACECAR_TLS_CERT_FILE": certFile,
		"TRACECAR_TLS_KEY_FILE":  keyFile,
	})
	roots := x509.NewCertPool()
	roots.AddCert(first)

	for _, tc := range []struct {
		name   string
		h2     bool
		proto  string
		status int
	}{{"HTTP/1.1", false, "HTTP/1.1", 200}, {"HTTP/2", true, "HTTP/2.0", 200}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: tc.h2}
		if !tc.h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+inbound+"/", nil)
		req.Header.Set("X-Correlation-ID", "tls-1")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.status || resp.Proto != tc.proto || string(body) != "hello over HTTP/1.1" ||
			resp.Header.Get("X-Correlation-ID") != "tls-1" {
			t.Errorf("%s: %d %s %q correlation %q", tc.name, resp.StatusCode, resp.Proto, body, resp.Header.Get("X-Correlation-ID"))
		}
	}

	cc, err := grpc.NewClient(inbound, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	body := bytes.Repeat([]byte("tls"), 1000)
	res, err := testgrpc.NewTestServiceClient(cc).UnaryCall(t.Context(), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
	if err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if n := len(res.GetPayload().GetBody()); n != len(body) {
		t.Errorf("gRPC response payload %d bytes, want %d", n, len(body))
	}

	// Rotation: the new pair is served from the next check on.
	writeCert(t, certFile, keyFile, 2)
	poll(t, "the rotated certificate", func() bool {
		conn, err := tls.Dial("tcp", inbound, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402 -- reads the served certificate
		if err != nil {
			return false
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64() == 2
	})
}

// A certificate that does not load stops start-up with a clear error.
func TestInboundTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := run(nil, map[string]string{
		"TRACECAR_UPSTREAM": "http://127.0.0.1:1", "TRACECAR_INBOUND_ADDR": "127.0.0.1:0",
		"TRACECAR_ADMIN_ADDR": "127.0.0.1:0", "TRACECAR_EGRESS_ENABLED": "false", "OTEL_SDK_DISABLED": "true",
		"TRACECAR_TLS_CERT_FILE": certFile, "TRACECAR_TLS_KEY_FILE": keyFile,
	}, io.Discard, &stderr, make(chan os.Signal))
	if code == 0 || !strings.Contains(stderr.String(), "TRACECAR_TLS_CERT_FILE") || !strings.Contains(stderr.String(), "certificate") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
