package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs Debian's redis-server on a free loopback port for one
// test. Without the binary the test fails under CI and is skipped elsewhere.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found (Debian package redis-server): %v", err)
		}
		t.Skipf("redis-server not found (Debian package redis-server): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	poll(t, "redis-server to answer PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return client.Ping(ctx).Err() == nil
	})
	return addr
}

func post(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer client-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Two sidecar replicas in front of the same app share one Redis: a retry
// that lands on the other replica is replayed, not executed again.
func TestReplicasShareIdempotencyKeysThroughRedis(t *testing.T) {
	addr := startRedis(t)
	var executions atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := executions.Add(1)
		w.Header().Set("Location", "/payments/"+strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"payment":`+strconv.FormatInt(n, 10)+`}`)
	}))
	defer app.Close()
	env := map[string]string{
		"TRACECAR_UPSTREAM":           app.URL,
		"TRACECAR_IDEMPOTENCY_STORE":  "redis",
		"TRACECAR_REDIS_URL":          "redis://" + addr + "/0",
		"TRACECAR_IDEMPOTENCY_ROUTES": "POST /payments=required",
		"TRACECAR_EGRESS_ADDR":        "127.0.0.1:0",
	}
	inA, _, sigsA, exitA, _ := startSidecar(t, env)
	inB, _, sigsB, exitB, _ := startSidecar(t, env)
	defer func() { sigsA <- syscall.SIGTERM; sigsB <- syscall.SIGTERM; <-exitA; <-exitB }()

	first, body1 := post(t, "http://"+inA+"/payments", "pay-77", `{"amount":10}`)
	retry, body2 := post(t, "http://"+inB+"/payments", "pay-77", `{"amount":10}`)
	if first.StatusCode != 201 || retry.StatusCode != 201 || body1 != body2 || body1 != `{"payment":1}` {
		t.Fatalf("first %d %q, retry on the other replica %d %q", first.StatusCode, body1, retry.StatusCode, body2)
	}
	if retry.Header.Get("Idempotent-Replayed") != "true" || retry.Header.Get("Location") != "/payments/1" {
		t.Errorf("retry headers %v, want Idempotent-Replayed and the original Location", retry.Header)
	}
	if n := executions.Load(); n != 1 {
		t.Errorf("the app executed %d times, want 1", n)
	}
	mismatch, _ := post(t, "http://"+inB+"/payments", "pay-77", `{"amount":99}`)
	if mismatch.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body on the other replica: %d, want 422", mismatch.StatusCode)
	}
}

// With Redis unreachable, a required route refuses (503) rather than risk a
// second execution, and an optional route passes through.
func TestRedisDownFailsClosedOnRequiredRoutes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	var executions atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { executions.Add(1) }))
	defer app.Close()
	in, _, sigs, exit, logs := startSidecar(t, map[string]string{
		"TRACECAR_UPSTREAM":           app.URL,
		"TRACECAR_IDEMPOTENCY_STORE":  "redis",
		"TRACECAR_REDIS_URL":          "redis://" + dead,
		"TRACECAR_IDEMPOTENCY_ROUTES": "POST /payments=required,POST /notes=optional",
		"TRACECAR_EGRESS_ADDR":        "127.0.0.1:0",
	})
	defer func() { sigs <- syscall.SIGTERM; <-exit }()
	if resp, _ := post(t, "http://"+in+"/payments", "k-1", "x"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("required route with Redis down: %d, want 503", resp.StatusCode)
	}
	if resp, _ := post(t, "http://"+in+"/notes", "k-2", "x"); resp.StatusCode != http.StatusOK {
		t.Errorf("optional route with Redis down: %d, want the app's 200", resp.StatusCode)
	}
	if n := executions.Load(); n != 1 {
		t.Errorf("the app executed %d times, want 1 (the optional route only)", n)
	}
	if !strings.Contains(logs.String(), "idempotency store unreachable at start") {
		t.Error("no start-up warning about the unreachable store")
	}
	if strings.Contains(logs.String(), "k-1") {
		t.Error("an idempotency key appears whole in the log")
	}
}
