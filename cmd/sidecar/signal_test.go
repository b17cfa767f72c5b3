package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run the real main() in a child process (signals,
// os.Exit) by re-executing the test binary.
func TestMain(m *testing.M) {
	if os.Getenv("TRACECAR_TEST_RUN_MAIN") == "1" {
		os.Args = []string{"sidecar"}
		main()
		return
	}
	os.Exit(m.Run())
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(arrived)
		<-release
	}))
	defer app.Close()
	defer close(release)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"TRACECAR_TEST_RUN_MAIN=1",
		"TRACECAR_UPSTREAM="+app.URL,
		"TRACECAR_INBOUND_ADDR=127.0.0.1:0",
		"TRACECAR_ADMIN_ADDR=127.0.0.1:0",
		"TRACECAR_EGRESS_ADDR=127.0.0.1:0",
		"TRACECAR_EGRESS_GRPC_ADDR=127.0.0.1:0",
		"TRACECAR_DRAIN_TIMEOUT=1m",
		"OTEL_SDK_DISABLED=true",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// The ready line names the inbound address.
	lines := bufio.NewScanner(stderr)
	var inbound string
	for inbound == "" && lines.Scan() {
		var l struct{ Msg, Inbound string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "sidecar ready" {
			inbound = l.Inbound
		}
	}
	if inbound == "" {
		t.Fatal("child never became ready")
	}
	go func() {
		for lines.Scan() { // keep draining the pipe
		}
	}()
	go func() {
		if resp, err := http.Get("http://" + inbound + "/hang"); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-arrived

	_ = cmd.Process.Signal(syscall.SIGTERM) // starts a drain that would wait a minute
	poll(t, "the listener to close", func() bool { return status("http://"+inbound+"/") == -1 })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second): // well inside the one-minute drain
		t.Fatal("a second signal did not end the drain")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child ended with %v, want exit code 1", err)
	}
}
