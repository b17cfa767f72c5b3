package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tracecar/tracecar/bench/internal/report"
)

// prepare checks the machine, builds what is missing, installs nginx and
// HAProxy when asked, and starts the backend and the OTLP sink.
func (h *harness) prepare(ctx context.Context) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset (util-linux) is required: %w", err)
	}
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("%d CPU: the proxy and the load need a core each", runtime.NumCPU())
	}
	if err := h.build(ctx); err != nil {
		return err
	}
	h.findClassics(ctx)
	var err error
	if h.backendAddr, err = freeAddr(); err != nil {
		return err
	}
	if h.sinkAddr, err = freeAddr(); err != nil {
		return err
	}
	env := append(baseEnv(), "GOMAXPROCS=1")
	backend, err := h.sup.start("backend", loadCPU, env, h.bins["backend"], "-addr", h.backendAddr)
	if err != nil {
		return err
	}
	sink, err := h.sup.start("otlpsink", loadCPU, env, h.bins["otlpsink"], "-addr", h.sinkAddr)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, backend, "http://"+h.backendAddr+"/ready", http.StatusNoContent, 10*time.Second); err != nil {
		return err
	}
	return waitReady(ctx, sink, "http://"+h.sinkAddr+"/stats", http.StatusOK, 10*time.Second)
}

// build makes the harness's programs and the sidecar where they are
// missing.
func (h *harness) build(ctx context.Context) error {
	h.bins = map[string]string{}
	var missing []string
	for _, name := range []string{"loadgen", "backend", "otlpsink"} {
		path := filepath.Join(h.opts.binDir, name)
		if h.opts.binDir == "" || !executable(path) {
			path = filepath.Join(h.tmp, "bin", name)
			missing = append(missing, "./bench/cmd/"+name)
		}
		h.bins[name] = path
	}
	if len(missing) > 0 {
		logf("building %s", strings.Join(missing, " "))
		if err := goBuild(ctx, h.opts.repoDir, filepath.Join(h.tmp, "bin")+"/", missing...); err != nil {
			return err
		}
	}
	h.sidecar = h.opts.sidecar
	if !executable(h.sidecar) {
		h.sidecar = filepath.Join(h.tmp, "bin", "sidecar")
		logf("building ./cmd/sidecar (no %s)", h.opts.sidecar)
		if err := goBuild(ctx, h.opts.repoDir, h.sidecar, "./cmd/sidecar"); err != nil {
			return err
		}
	}
	if abs, err := filepath.Abs(h.sidecar); err == nil {
		h.sidecar = abs
	}
	return nil
}

func goBuild(ctx context.Context, dir, out string, pkgs ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", out}, pkgs...)...) //nolint:gosec // building this repository's own packages
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, b)
	}
	return nil
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// lookSbin finds a program in PATH or in the sbin directories a
// non-root PATH may lack.
func lookSbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); executable(p) {
			return p
		}
	}
	return ""
}

// findClassics locates nginx and HAProxy, installing them from the
// distribution when missing and allowed. A configuration whose program is
// still missing is left out, with a note.
func (h *harness) findClassics(ctx context.Context) {
	h.nginx, h.haproxy = lookSbin("nginx"), lookSbin("haproxy")
	var pkgs []string
	if h.nginx == "" && slices.Contains(h.opts.configs, report.Nginx) {
		pkgs = append(pkgs, "nginx")
	}
	if h.haproxy == "" && slices.Contains(h.opts.configs, report.HAProxy) {
		pkgs = append(pkgs, "haproxy")
	}
	if len(pkgs) > 0 && h.opts.install {
		if err := aptInstall(ctx, pkgs...); err != nil {
			h.note("could not install %s: %v", strings.Join(pkgs, " "), err)
		}
		h.nginx, h.haproxy = lookSbin("nginx"), lookSbin("haproxy")
	}
	var left []string
	for _, c := range h.opts.configs {
		switch {
		case c == report.Nginx && h.nginx == "":
			h.note("nginx not found: N left out (ratios against nginx are n/a)")
		case c == report.HAProxy && h.haproxy == "":
			h.note("HAProxy not found: H left out")
		default:
			left = append(left, c)
		}
	}
	h.opts.configs = left
}

// aptInstall installs Debian packages. The service the package would start
// is not wanted: where the image has no policy-rc.d forbidding it, the
// harness still only ever talks to its own instances on their own ports.
func aptInstall(ctx context.Context, pkgs ...string) error {
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return fmt.Errorf("no apt-get: install %s by hand", strings.Join(pkgs, " "))
	}
	logf("installing %s with apt-get", strings.Join(pkgs, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"update", "-qq"},
		append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, apt, args...) //nolint:gosec // apt-get with fixed package names
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, lastLines(b, 10))
		}
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sinkSpans is the number of spans the OTLP sink has received, or 0 when
// it cannot tell.
func (h *harness) sinkSpans(ctx context.Context) int64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.sinkAddr+"/stats", nil)
	if err != nil {
		return 0
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	var s struct {
		Spans int64 `json:"spans"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return 0
	}
	return s.Spans
}

// meta describes the machine, the versions and the method.
func (h *harness) meta(began time.Time) report.Meta {
	o := h.opts
	m := report.Meta{
		Date: began, Mode: "full", Rate: o.rate, Conns: o.conns,
		Warmup: report.Duration(o.warmup), Measure: report.Duration(o.measure), Tput: report.Duration(o.tput),
		Elapsed: report.Duration(time.Since(began).Round(time.Second)),
		Notes:   h.notes,
	}
	if slices.Contains(o.workloads, report.GRPC) {
		m.GRPCRate, m.GRPCConns = o.grpcRate, o.grpcConns
	}
	if o.quick {
		m.Mode = "quick smoke run: short windows, numbers indicative only"
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.Machine = fmt.Sprintf("%d CPUs (%s), %.0f GiB memory, Linux %s", runtime.NumCPU(), cpuModel(), memGiB(), strings.TrimSpace(string(kernel)))
	m.Versions = []string{"tracecar " + firstLine(h.sidecar, "-version"), runtime.Version()}
	if h.nginx != "" {
		m.Versions = append(m.Versions, firstLine(h.nginx, "-v"))
	}
	if h.haproxy != "" {
		m.Versions = append(m.Versions, firstLine(h.haproxy, "-v"))
	}
	return m
}

// firstLine is the first line a program prints (on either stream) for args.
func firstLine(prog string, args ...string) string {
	out, _ := exec.Command(prog, args...).CombinedOutput() //nolint:gosec // version queries of the programs benchmarked
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	line = strings.TrimPrefix(line, "nginx version: ")
	if i := strings.Index(line, " - "); i > 0 { // HAProxy appends its release notes' URL
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if name, value, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return runtime.GOARCH
}

func memGiB() float64 {
	b, _ := os.ReadFile("/proc/meminfo")
	var kb float64
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if _, err := fmt.Sscanf(string(line), "MemTotal: %f kB", &kb); err == nil {
			break
		}
	}
	return kb / (1 << 20)
}
