package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// stack is a demo app behind a sidecar of its own, started for one test: the
// app's HTTP_PROXY is the sidecar's egress proxy.
type stack struct {
	inboundURL string // the sidecar's inbound listener
	adminURL   string // the sidecar's admin listener
	egressAddr string // the sidecar's egress proxy, host:port
	appURL     string // the app, directly
	upstream   string // the sidecar's TRACECAR_UPSTREAM, which names the app's breaker
	sidecar    *process
}

// startStack starts a demo app and a sidecar in front of it, both stopped
// (and checked for a clean exit and data races) when the test ends. name
// tells their logs and services apart; sidecarEnv is added to the sidecar's
// environment.
func startStack(t *testing.T, name string, sidecarEnv ...string) stack {
	t.Helper()
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	s := stack{
		appURL:     "http://" + addr(0),
		inboundURL: "http://" + addr(1),
		adminURL:   "http://" + addr(2),
		egressAddr: addr(3),
	}
	s.upstream = s.appURL
	startTestProcess(t, name+"-app", appBin, []string{"-addr", addr(0)}, append([]string{
		"OTEL_SERVICE_NAME=e2e-" + name + "-app",
		"HTTP_PROXY=http://" + s.egressAddr,
	}, otelEnv...), s.appURL+"/hello")
	env := append([]string{
		"OTEL_SERVICE_NAME=e2e-" + name + "-sidecar",
		"TRACECAR_UPSTREAM=" + s.upstream,
		"TRACECAR_INBOUND_ADDR=" + addr(1),
		"TRACECAR_ADMIN_ADDR=" + addr(2),
		"TRACECAR_EGRESS_ADDR=" + s.egressAddr,
		"TRACECAR_EGRESS_GRPC_ADDR=" + addr(4),
		"TRACECAR_DRAIN_TIMEOUT=5s",
	}, otelEnv...)
	s.sidecar = startTestProcess(t, name+"-sidecar", sidecarBin, nil, append(env, sidecarEnv...), s.adminURL+"/readyz")
	return s
}

// startTestProcess starts a process for one test and waits until readyURL
// answers 200. When the test ends the process is stopped; an unclean exit or
// a data race fails the test, and a failed test shows the process's log.
func startTestProcess(t *testing.T, name, bin string, args, env []string, readyURL string) *process {
	t.Helper()
	p, err := startProcess(workDir, name, bin, args, env)
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
	if err := p.waitReady(readyURL); err != nil {
		t.Fatal(err)
	}
	return p
}

// readyLine returns the fields of the sidecar's "sidecar ready" JSON log line.
func readyLine(p *process) (map[string]any, error) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"sidecar ready"`) {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(line, &fields); err != nil {
			return nil, fmt.Errorf("%s: ready line %q: %w", p.name, line, err)
		}
		if fields["msg"] == "sidecar ready" {
			return fields, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s logged no \"sidecar ready\" line", p.name)
}

// TestReadyLineNamesListeners: the sidecar's ready line names every listener
// it bound, the egress proxy's included, and the upstream.
func TestReadyLineNamesListeners(t *testing.T) {
	fields, err := readyLine(mainSidecar)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"inbound":  strings.TrimPrefix(sidecarURL, "http://"),
		"admin":    strings.TrimPrefix(adminURL, "http://"),
		"egress":   egressAddr,
		"upstream": appURL,
	}
	for k, v := range want {
		if got, ok := fields[k].(string); !ok || got != v {
			t.Errorf("ready line %s = %v, want %q (line: %v)", k, fields[k], v, fields)
		}
	}
}
