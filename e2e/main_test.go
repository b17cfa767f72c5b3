package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Service names the processes report to Jaeger.
const (
	sidecarService    = "e2e-sidecar"
	appService        = "e2e-app"
	downstreamService = "e2e-downstream"
)

// Addresses of the running processes, set by TestMain.
var (
	sidecarURL    string // inbound proxy, e.g. http://127.0.0.1:41234
	appURL        string // demo app, directly
	adminURL      string // sidecar admin listener
	egressAddr    string // sidecar egress proxy (host:port), the app's HTTP_PROXY
	downstreamURL string // a second demo app, the app's dependency in /chain
	queryURL      string // Jaeger query API
)

// What TestMain prepared for tests that start processes of their own.
var (
	workDir     string   // logs and binaries
	sidecarBin  string   // the sidecar, built with -race when the tests have it
	appBin      string   // the demo app
	grpcAppBin  string   // the demo gRPC app
	otelEnv     []string // OTEL_* settings that export to the test's Jaeger
	mainSidecar *process // the sidecar in front of the app at appURL
)

// startDeadline bounds how long each process may take to become ready.
const startDeadline = 60 * time.Second

// pollInterval is how often readiness and Jaeger are polled.
const pollInterval = 50 * time.Millisecond

// errGiveUp, wrapped by a poll check, ends the poll at once.
var errGiveUp = errors.New("giving up")

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts Jaeger; the demo app behind the sidecar, the app's outbound
// calls going through the sidecar's egress proxy (HTTP_PROXY), with serial
// inference on; and a second demo app as their downstream. Then it runs the
// tests.
func run(m *testing.M) (code int) {
	var err error
	workDir, err = os.MkdirTemp("", "tracecar-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(workDir) }()

	var procs []*process
	defer func() {
		// Stop everything; a process that does not exit cleanly fails the run.
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
				code = 1
			}
		}
		for _, p := range procs {
			if raced := p.logContains("WARNING: DATA RACE"); raced {
				fmt.Fprintf(os.Stderr, "e2e: the race detector fired in %s\n", p.name)
				code = 1
			}
		}
		if code != 0 {
			for _, p := range procs {
				p.dumpLog()
			}
		}
	}()

	jaegerBin, err := findJaeger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	sidecarBin, appBin, grpcAppBin, err = buildBinaries(workDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	ports, err := freePorts(11)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	otlpHTTP, otlpGRPC, queryHTTP, queryGRPC, health := addr(0), addr(1), addr(2), addr(3), addr(4)
	appAddr, sidecarAddr, adminAddr, downstreamAddr := addr(5), addr(6), addr(7), addr(9)
	egressAddr = addr(8)
	queryURL, appURL, sidecarURL, adminURL = "http://"+queryHTTP, "http://"+appAddr, "http://"+sidecarAddr, "http://"+adminAddr
	downstreamURL = "http://" + downstreamAddr

	start := func(name, bin string, args, env []string, readyURL string) (*process, error) {
		p, err := startProcess(workDir, name, bin, args, env)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, p.waitReady(readyURL)
	}

	configPath, err := filepath.Abs("../deploy/jaeger/config.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if _, err := start("jaeger", jaegerBin, []string{"--config=file:" + configPath}, []string{
		"TRACECAR_JAEGER_OTLP_HTTP=" + otlpHTTP,
		"TRACECAR_JAEGER_OTLP_GRPC=" + otlpGRPC,
		"TRACECAR_JAEGER_QUERY_HTTP=" + queryHTTP,
		"TRACECAR_JAEGER_QUERY_GRPC=" + queryGRPC,
		"TRACECAR_JAEGER_HEALTH=" + health,
	}, "http://"+health+"/status"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	otelEnv = []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpHTTP,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=100", // export within 100 ms
	}
	if _, err := start("downstream", appBin, []string{"-addr", downstreamAddr},
		append([]string{"OTEL_SERVICE_NAME=" + downstreamService}, otelEnv...), downstreamURL+"/hello"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if _, err := start("demo-app", appBin, []string{"-addr", appAddr}, append([]string{
		"OTEL_SERVICE_NAME=" + appService,
		"HTTP_PROXY=http://" + egressAddr,
	}, otelEnv...), appURL+"/hello"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if mainSidecar, err = start("sidecar", sidecarBin, nil, append([]string{
		"OTEL_SERVICE_NAME=" + sidecarService,
		"TRACECAR_UPSTREAM=" + appURL,
		"TRACECAR_INBOUND_ADDR=" + sidecarAddr,
		"TRACECAR_ADMIN_ADDR=" + adminAddr,
		"TRACECAR_EGRESS_ADDR=" + egressAddr,
		"TRACECAR_EGRESS_GRPC_ADDR=" + addr(10),
		"TRACECAR_EGRESS_SERIAL_INFERENCE=true",
		"TRACECAR_DRAIN_TIMEOUT=5s",
	}, otelEnv...), adminURL+"/readyz"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	return m.Run()
}

// findJaeger returns the Jaeger binary: $TRACECAR_JAEGER_BIN, else ../bin/jaeger.
func findJaeger() (string, error) {
	bin := os.Getenv("TRACECAR_JAEGER_BIN")
	if bin == "" {
		bin = "../bin/jaeger"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() {
		return "", fmt.Errorf("no Jaeger binary at %s: run `make bin/jaeger` first (or set TRACECAR_JAEGER_BIN)", abs)
	}
	return abs, nil
}

// buildBinaries builds the sidecar, the demo app and the demo gRPC app into
// dir, the sidecar with the race detector when the tests have it.
func buildBinaries(dir string) (sidecar, app, grpcApp string, err error) {
	sidecar, app, grpcApp = filepath.Join(dir, "sidecar"), filepath.Join(dir, "demo-app"), filepath.Join(dir, "demo-grpcapp")
	builds := [][]string{
		{"build", "-o", sidecar, "./cmd/sidecar"},
		{"build", "-o", app, "./deploy/demo/app"},
		{"build", "-o", grpcApp, "./deploy/demo/grpcapp"},
	}
	if raceEnabled {
		builds[0] = []string{"build", "-race", "-o", sidecar, "./cmd/sidecar"}
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return sidecar, app, grpcApp, nil
}

// freePorts reserves n distinct loopback ports, releasing them together.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is one child process with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // exit status, valid after done
}

func startProcess(dir, name, bin string, args, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	if raceEnabled {
		cmd.Env = append(cmd.Env, "GORACE=halt_on_error=1")
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// cleanEnv is the test's environment without OTEL_*, TRACECAR_* and proxy
// variables, so a developer's settings cannot change what the processes do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "GORACE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		if !strings.HasPrefix(name, "OTEL_") && !strings.HasPrefix(name, "TRACECAR_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls url until it answers 200, failing early if the process exits.
func (p *process) waitReady(url string) error {
	client := &http.Client{Timeout: time.Second}
	return poll(startDeadline, func() (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%w: %s exited during start-up: %v", errGiveUp, p.name, p.err)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return false, fmt.Errorf("%s not ready at %s: %w", p.name, url, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s not ready at %s: status %s", p.name, url, resp.Status)
		}
		return true, nil
	})
}

// poll calls check every pollInterval until it reports done, returns an error
// while the process it watches is gone, or the timeout passes; then it returns
// check's last error.
func poll(timeout time.Duration, check func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, err := check()
		if done {
			return nil
		}
		if errors.Is(err, errGiveUp) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		<-tick.C
	}
}

// stop sends SIGTERM and waits up to 15 s for a clean exit, then kills.
func (p *process) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within 15s of SIGTERM", p.name)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return fmt.Errorf("%s exited after SIGTERM with %v, want exit status 0", p.name, p.err)
	}
	return p.err
}

func (p *process) logContains(s string) bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && bytes.Contains(b, []byte(s))
}

// dumpLog prints the end of the process's log to stderr.
func (p *process) dumpLog() {
	const maxTail = 32 << 10
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s log: %v\n", p.name, err)
		return
	}
	if len(b) > maxTail {
		b = append([]byte("…\n"), b[len(b)-maxTail:]...)
	}
	fmt.Fprintf(os.Stderr, "\n===== %s log (%s) =====\n%s\n===== end of %s log =====\n", p.name, p.logPath, b, p.name)
}
