package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink safe to read while the sidecar writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startSidecar runs the sidecar in-process on free loopback ports and
// returns its inbound and admin addresses.
func startSidecar(t *testing.T, env map[string]string) (inbound, admin string, sigs chan os.Signal, exit chan int, logs *syncBuffer) {
	t.Helper()
	base := map[string]string{
		"TRACECAR_INBOUND_ADDR":     "127.0.0.1:0",
		"TRACECAR_ADMIN_ADDR":       "127.0.0.1:0",
		"TRACECAR_EGRESS_ADDR":      "127.0.0.1:0",
		"TRACECAR_EGRESS_GRPC_ADDR": "127.0.0.1:0",
		"OTEL_SDK_DISABLED":         "true",
	}
	for k, v := range env {
		base[k] = v
	}
	sigs = make(chan os.Signal, 2)
	exit = make(chan int, 1)
	logs = &syncBuffer{}
	go func() { exit <- run(nil, base, io.Discard, logs, sigs) }()
	poll(t, "the ready log line", func() bool { return strings.Contains(logs.String(), `"msg":"sidecar ready"`) })
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct{ Msg, Inbound, Admin string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "sidecar ready" {
			return line.Inbound, line.Admin, sigs, exit, logs
		}
	}
	t.Fatalf("no ready line in %s", logs)
	return
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestDrainLetsInFlightRequestFinish(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	defer app.Close()
	inbound, admin, sigs, exit, logs := startSidecar(t, map[string]string{
		"TRACECAR_UPSTREAM":      app.URL,
		"TRACECAR_DRAIN_TIMEOUT": "10s",
	})
	if got := status("http://" + admin + "/readyz"); got != 200 {
		t.Fatalf("readyz = %d before drain", got)
	}
	if got := status("http://" + admin + "/healthz"); got != 200 {
		t.Fatalf("healthz = %d", got)
	}

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + inbound + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	sigs <- syscall.SIGTERM

	poll(t, "readiness to turn false", func() bool { return status("http://"+admin+"/readyz") == 503 })
	poll(t, "the inbound listener to close", func() bool {
		c, err := net.DialTimeout("tcp", inbound, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	select {
	case <-exit:
		t.Fatal("sidecar exited while a request was in flight")
	default:
	}
	close(release)
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v; want 200 finished", r.code, r.body, r.err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d, want 0; logs:\n%s", code, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sidecar did not exit after draining")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped line:\n%s", logs)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer app.Close()
	inbound, admin, sigs, exit, _ := startSidecar(t, map[string]string{
		"TRACECAR_UPSTREAM":           app.URL,
		"OTEL_SDK_DISABLED":           "false",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", // nothing listens: spans are dropped and counted
	})
	defer func() { sigs <- syscall.SIGTERM; <-exit }()
	if got := status("http://" + inbound + "/"); got != http.StatusTeapot {
		t.Fatalf("proxied status %d", got)
	}
	var text string
	poll(t, "the request counter", func() bool {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		text = string(b)
		return strings.Contains(text, `tracecar_http_requests_total{code="4xx",method="GET"} 1`)
	})
	for _, want := range []string{
		"tracecar_http_request_duration_seconds_bucket",
		"tracecar_http_requests_in_flight 0",
		`tracecar_build_info{goversion="`,
		"tracecar_spans_dropped_total",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestBadConfigExitsTwoWithOneLine(t *testing.T) {
	var stderr bytes.Buffer
	code := run(nil, map[string]string{"TRACECAR_UPSTREAM": "ftp://example.com"}, io.Discard, &stderr, nil)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	out := stderr.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, `sidecar: TRACECAR_UPSTREAM="ftp://example.com"`) {
		t.Errorf("stderr = %q, want one line naming the variable and value", out)
	}
}

func TestTakenPortFailsStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stderr bytes.Buffer
	code := run(nil, map[string]string{
		"TRACECAR_UPSTREAM":     "http://127.0.0.1:1",
		"TRACECAR_INBOUND_ADDR": ln.Addr().String(),
		"TRACECAR_ADMIN_ADDR":   "127.0.0.1:0",
		"OTEL_SDK_DISABLED":     "true",
	}, io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "TRACECAR_INBOUND_ADDR") ||
		!strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-version"}, nil, &out, io.Discard, nil); code != 0 ||
		!strings.HasPrefix(out.String(), "sidecar dev (go") {
		t.Errorf("-version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-h"}, nil, &out, io.Discard, nil); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	for _, v := range []string{"TRACECAR_UPSTREAM", "TRACECAR_INBOUND_ADDR", ":15006", "TRACECAR_ADMIN_ADDR",
		"127.0.0.1:15000", "TRACECAR_CORRELATION_HEADER", "OTEL_EXPORTER_OTLP_PROTOCOL", "sidecar trace"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h lacks %s", v)
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-bogus"}, nil, io.Discard, &stderr, nil); code != 2 {
		t.Errorf("unknown flag exit %d", code)
	}
}

// Profiles are served on the admin listener only when asked for.
func TestAdminPprof(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"false", http.StatusNotFound}, {"true", http.StatusOK}} {
		_, admin, sigs, exit, _ := startSidecar(t, map[string]string{
			"TRACECAR_UPSTREAM": "http://127.0.0.1:1", "TRACECAR_ADMIN_PPROF": tc.env,
		})
		if got := status("http://" + admin + "/debug/pprof/goroutine?debug=1"); got != tc.want {
			t.Errorf("TRACECAR_ADMIN_PPROF=%s: /debug/pprof/goroutine = %d, want %d", tc.env, got, tc.want)
		}
		sigs <- os.Interrupt
		if code := <-exit; code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
}
