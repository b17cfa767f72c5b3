package dedupe

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// redisServer is a real redis-server on a free loopback port, owned by one test.
type redisServer struct {
	Addr string
	cmd  *exec.Cmd
	once sync.Once
	out  bytes.Buffer
}

// startRedis starts redis-server for t and stops it in t.Cleanup. Without
// the binary it skips, or fails when CI=true (CI installs the Debian package).
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not found (Debian package redis-server): %v"
		if os.Getenv("CI") == "true" {
			t.Fatalf(msg, err)
		}
		t.Skipf(msg, err)
	}
	port := freePort(t)
	s := &redisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(s.Stop)

	client := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer func() { _ = client.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("redis-server on %s did not answer PING within 10s: %v\n%s", s.Addr, err, s.out.String())
		}
		<-tick.C
	}
}

// Stop kills the server and waits for it to exit.
func (s *redisServer) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill() // already exited is fine
		_ = s.cmd.Wait()         // exit status of a killed process is expected
	})
}

// Client returns a client with short timeouts and no retries, closed in t.Cleanup.
func (s *redisServer) Client(t testing.TB) *redis.Client {
	return testClient(t, s.Addr)
}

func testClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:               addr,
		DialTimeout:        200 * time.Millisecond,
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		ReadTimeout:        500 * time.Millisecond,
		WriteTimeout:       500 * time.Millisecond,
		MaxRetries:         -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("close probe listener: %v", err)
	}
	return port
}
