package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/tracecar/tracecar/bench/internal/load"
	"github.com/tracecar/tracecar/bench/internal/procstat"
	"github.com/tracecar/tracecar/bench/internal/report"
)

// errLoadgen is wrapped when the load generator could not run at all.
var errLoadgen = errors.New("loadgen failed")

// loadArgs are the loadgen flags of a workload against t.
func (h *harness) loadArgs(t *target, workload string, keys bool) []string {
	o := h.opts
	open := []string{
		"-rate", strconv.FormatFloat(o.rate, 'f', -1, 64),
		"-conns", strconv.Itoa(o.conns),
		"-warmup", o.warmup.String(),
		"-duration", o.measure.String(),
		"-expect-bytes", "1024",
	}
	var args []string
	switch workload {
	case report.W1:
		args = append([]string{"-url", t.base + "/1k"}, open...)
	case report.W6:
		args = []string{"-mode", "closed", "-url", t.base + "/1k", "-conns", strconv.Itoa(o.conns),
			"-warmup", o.tputWarmup.String(), "-duration", o.tput.String(), "-expect-bytes", "1024"}
	case report.Post:
		args = append([]string{"-url", t.base + "/echo", "-body", "1024"}, open...)
		if keys {
			args = append(args, "-idempotency-keys")
		}
	case report.H2C:
		args = append([]string{"-proto", "h2c", "-url", t.h2c + "/1k"}, open...)
	case report.WS:
		args = append([]string{"-proto", "ws", "-url", "ws" + t.base[len("http"):] + "/ws", "-body", "1024"}, open...)
	case report.GRPC:
		args = []string{"-proto", "grpc", "-url", t.grpc, "-body", "1024", "-expect-bytes", "1024",
			"-rate", strconv.FormatFloat(o.grpcRate, 'f', -1, 64), "-conns", strconv.Itoa(o.grpcConns),
			"-warmup", o.warmup.String(), "-duration", o.measure.String()}
	case report.GRPCMax:
		args = []string{"-proto", "grpc", "-mode", "closed", "-url", t.grpc, "-body", "1024", "-expect-bytes", "1024",
			"-conns", strconv.Itoa(o.grpcConns), "-warmup", o.tputWarmup.String(), "-duration", o.tput.String()}
	}
	if t.proxy != "" {
		args = append(args, "-proxy", t.proxy)
	}
	return args
}

// runLoad runs one workload against t and measures t's process over the
// loadgen's measured window. recordAs names the run (Idem for the S1
// process's keyed POSTs).
func (h *harness) runLoad(ctx context.Context, t *target, workload, recordAs string, keys bool) (report.Run, error) {
	run := report.Run{Config: recordAs, Workload: workload}
	o := h.opts
	limit := o.warmup + o.measure + o.tputWarmup + o.tput + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	args := append([]string{"-c", strconv.Itoa(loadCPU), h.bins["loadgen"]}, h.loadArgs(t, workload, keys)...)
	cmd := exec.CommandContext(ctx, "taskset", args...) //nolint:gosec // the harness's own load generator
	cmd.Env = baseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the harness, whatever kills it
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return run, err
	}
	if err := cmd.Start(); err != nil {
		return run, err
	}
	var before, after procstat.Sample
	var sampleErr error
	sample := func(s *procstat.Sample) {
		if t.proc == nil {
			return
		}
		v, err := procstat.Tree(t.proc.pid())
		if err != nil && sampleErr == nil {
			sampleErr = err
		}
		*s = v
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 16<<20) // the result carries the histogram
	for sc.Scan() {
		var line struct {
			Mark   string       `json:"mark"`
			Result *load.Result `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue
		}
		switch {
		case line.Mark == load.MarkStart:
			sample(&before)
		case line.Mark == load.MarkStop:
			sample(&after)
		case line.Result != nil:
			run.Result = line.Result
		}
	}
	waitErr := cmd.Wait()
	if run.Result == nil {
		if waitErr == nil {
			waitErr = errors.New("no result line")
		}
		return run, fmt.Errorf("%w: %s %s: %w %s", errLoadgen, t.config, workload, waitErr, bytes.TrimSpace(stderr.Bytes()))
	}
	if sampleErr != nil {
		return run, fmt.Errorf("sampling %s: %w", t.config, sampleErr)
	}
	if t.proc != nil {
		run.CPUTicks = after.Ticks - before.Ticks
		run.RSSKiB, run.HWMKiB = after.RSSKiB, after.HWMKiB
		if n := run.Result.WindowRequests; n > 0 {
			run.CPUUsPerReq = float64(run.CPUTicks) * 1e6 / float64(h.clockTicks) / float64(n)
		}
	}
	return run, nil
}
