package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the harness started, pinned to one CPU with taskset.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once it exited and was reaped
}

// pid is the process's ID (taskset execs the program, so it is the
// program's).
func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// supervisor starts children and guarantees they are stopped: each in its
// own process group (so nginx's workers go with their master), each told
// by the kernel to stop if the harness dies (Pdeathsig), and all stopped by
// stopAll on every way out.
type supervisor struct {
	logDir   string
	mu       sync.Mutex
	children []*child
}

// start runs args on cpu with env, its output in logDir/name.log.
func (s *supervisor) start(name string, cpu int, env []string, args ...string) (*child, error) {
	logPath := filepath.Join(s.logDir, name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) //nolint:gosec // a log file in the harness's own temporary directory
	if err != nil {
		return nil, err
	}
	defer func() { _ = out.Close() }()                                                    // the child has its own copy
	cmd := exec.Command("taskset", append([]string{"-c", strconv.Itoa(cpu)}, args...)...) //nolint:gosec // the harness runs the programs it was told to benchmark
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	return c, nil
}

// stop sends SIGTERM, waits up to grace, then kills the process group. It
// also kills whatever is left in the group (an orphaned worker).
func (s *supervisor) stop(c *child, grace time.Duration) {
	if c == nil {
		return
	}
	pid := c.pid()
	if !c.exited() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-c.done
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // ESRCH when the group is empty
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.children {
		if x == c {
			s.children = append(s.children[:i], s.children[i+1:]...)
			break
		}
	}
}

// stopAll stops every child still running.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	left := append([]*child(nil), s.children...)
	s.mu.Unlock()
	for _, c := range left {
		s.stop(c, 3*time.Second)
	}
}

// tail returns the last lines of a child's log, for error messages.
func tail(c *child, lines int) string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// errNotReady is wrapped when a child does not become ready in time.
var errNotReady = errors.New("not ready")

// plainClient talks to loopback servers directly, whatever HTTP_PROXY says.
var plainClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   2 * time.Second,
}

// waitReady polls url until it answers want, failing early if c exits.
func waitReady(ctx context.Context, c *child, url string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := plainClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited during start-up: %w\n%s", c.name, errNotReady, tail(c, 10))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w after %s (last: %s)", url, errNotReady, timeout, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
