package wsmeter

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: timers fire only inside advance.
type fakeClock struct {
	mu     sync.Mutex
	t      int64
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	at     int64
	f      func()
	active bool
}

func (c *fakeClock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{c: c, at: c.t + int64(d), f: f, active: true}
	c.timers = append(c.timers, ft)
	return ft
}

func (ft *fakeTimer) Reset(d time.Duration) bool {
	ft.c.mu.Lock()
	defer ft.c.mu.Unlock()
	was := ft.active
	ft.active, ft.at = true, ft.c.t+int64(d)
	return was
}

func (ft *fakeTimer) Stop() bool {
	ft.c.mu.Lock()
	defer ft.c.mu.Unlock()
	was := ft.active
	ft.active = false
	return was
}

// advance moves the clock on by d and runs the timers that came due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t += int64(d)
	var due []func()
	for _, ft := range c.timers {
		if ft.active && ft.at <= c.t {
			ft.active = false
			due = append(due, ft.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, aerr := ln.Accept()
		if aerr != nil {
			t.Error(aerr)
		}
		accepted <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	deadline := time.Now().Add(20 * time.Second) // a hung test fails instead of stalling
	_ = c.SetDeadline(deadline)
	_ = s.SetDeadline(deadline)
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestIdleTimeoutFakeClock(t *testing.T) {
	client, server := tcpPair(t)
	fc := &fakeClock{}
	c := newConn(server, fc)
	c.SetIdleTimeout(10 * time.Second)

	msg := frame(true, opText, true, []byte("hi"))
	buf := make([]byte, 64)
	fc.advance(6 * time.Second)
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil { // activity at 6s
		t.Fatal(err)
	}
	fc.advance(5 * time.Second) // 11s: the timer fires, 5s idle, re-armed for 16s
	if c.IdleTimedOut() {
		t.Fatal("closed after 5s idle with a 10s timeout")
	}
	fc.advance(3 * time.Second) // 14s
	if _, err := c.Write(frame(true, opText, false, []byte("yo"))); err != nil {
		t.Fatal(err) // activity at 14s
	}
	fc.advance(2 * time.Second) // 16s: fires, 2s idle, re-armed for 24s
	fc.advance(7 * time.Second) // 23s
	if c.IdleTimedOut() {
		t.Fatal("closed after 9s idle with a 10s timeout")
	}
	fc.advance(1 * time.Second) // 24s: 10s idle
	if !c.IdleTimedOut() {
		t.Fatal("not closed after 10s idle")
	}
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after idle close: %v, want net.ErrClosed", err)
	}
	if got := c.In(); got.Messages != 1 {
		t.Errorf("In().Messages = %d, want 1", got.Messages)
	}
	if got := c.Out(); got.Messages != 1 {
		t.Errorf("Out().Messages = %d, want 1", got.Messages)
	}
}

func TestIdleTimeoutOffAndClose(t *testing.T) {
	_, server := tcpPair(t)
	fc := &fakeClock{}
	c := newConn(server, fc)
	c.SetIdleTimeout(time.Second)
	c.SetIdleTimeout(0)
	fc.advance(time.Hour)
	if c.IdleTimedOut() {
		t.Fatal("closed with the idle timeout off")
	}
	c.SetIdleTimeout(time.Second) // re-armed from now
	fc.advance(999 * time.Millisecond)
	if c.IdleTimedOut() {
		t.Fatal("closed before the timeout")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fc.advance(time.Hour)
	if c.IdleTimedOut() {
		t.Fatal("a closed conn reported an idle timeout")
	}
	c.SetIdleTimeout(time.Second) // no effect once closed
	if len(fc.timers) != 1 || fc.timers[0].active {
		t.Fatalf("timers after Close: %d, first active %v", len(fc.timers), fc.timers[0].active)
	}
}

// TestIdleTimeoutRealClock closes a silent loopback connection for real.
func TestIdleTimeoutRealClock(t *testing.T) {
	_, server := tcpPair(t)
	c := NewConn(server)
	c.SetIdleTimeout(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Read returned %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection not closed within 10s")
	}
	if !c.IdleTimedOut() {
		t.Fatal("IdleTimedOut() = false after the idle close")
	}
}

// TestConnPassesBytesUnchanged sends a stream that breaks the protocol: the
// bytes still pass both ways, and the meter records the violation.
func TestConnPassesBytesUnchanged(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server)
	in := cat(frame(true, opText, true, []byte("ok")), frame(true, opText, false, []byte("unmasked")), []byte("trailing junk"))
	go func() {
		if _, err := client.Write(in); err != nil {
			t.Error(err)
		}
		_ = client.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("read %q, %v; want %q", got, err, in)
	}
	s := c.In()
	var pe *ProtocolError
	if s.Bytes != int64(len(in)) || s.Frames != 1 || s.Messages != 1 || !errors.As(s.Err, &pe) ||
		pe.Reason != "unmasked frame where masking is required" || pe.Offset != 8 {
		t.Fatalf("In() = %+v (err %v)", s, s.Err)
	}

	out := cat(frame(true, opBinary, false, []byte{1, 2, 3}), frame(true, opClose, false, closePayload(1001, "away")))
	if n, werr := c.Write(out); werr != nil || n != len(out) {
		t.Fatalf("Write = %d, %v", n, werr)
	}
	if cerr := c.CloseWrite(); cerr != nil { // half-close passes through to the TCP conn
		t.Fatal(cerr)
	}
	got, err = io.ReadAll(client)
	if err != nil || !bytes.Equal(got, out) {
		t.Fatalf("client read %q, %v; want %q", got, err, out)
	}
	if s := c.Out(); s.Bytes != int64(len(out)) || s.Frames != 2 || s.Messages != 1 || s.CloseCode != 1001 || s.CloseReasonLen != 4 || s.Err != nil {
		t.Fatalf("Out() = %+v", s)
	}
}

func TestCloseWriteUnsupported(t *testing.T) {
	a, b := net.Pipe()
	defer func() { _ = a.Close(); _ = b.Close() }()
	if err := NewConn(a).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CloseWrite on net.Pipe: %v, want errors.ErrUnsupported", err)
	}
}

// TestConnShortWrite meters only the bytes a Write actually wrote.
func TestConnShortWrite(t *testing.T) {
	a, b := net.Pipe()
	defer func() { _ = a.Close() }()
	first := frame(true, opBinary, false, []byte("first"))
	second := frame(true, opBinary, false, []byte("second"))
	go func() {
		_, _ = io.ReadFull(b, make([]byte, len(first)))
		_ = b.Close() // the rest of the Write fails
	}()
	c := NewConn(a)
	n, err := c.Write(cat(first, second))
	if n != len(first) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write = %d, %v; want %d, io.ErrClosedPipe", n, err, len(first))
	}
	if s := c.Out(); s.Bytes != int64(len(first)) || s.Frames != 1 || s.Messages != 1 {
		t.Fatalf("Out() = %+v; want the first frame only", s)
	}
}
