package wsmeter

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is the hijacked client side of a WebSocket connection, metered. Read
// returns client-to-upstream bytes and feeds them to the "in" [Parser], which
// requires masked frames (RFC 6455 §5.1); Write sends upstream-to-client
// bytes and feeds them to the "out" Parser, which forbids masking. Bytes pass
// through unchanged.
//
// The wrapped conn must carry frames only: wrap it after the HTTP upgrade has
// been written, or write the 101 response around it (httputil.ReverseProxy
// does so when a ResponseWriter's Hijack returns the wrapped conn with the
// original *bufio.ReadWriter).
//
// A Conn is safe for one concurrent reader and one concurrent writer, which is
// how httputil.ReverseProxy copies an upgraded connection. [Conn.In] and
// [Conn.Out] may be called at any time, from any goroutine.
type Conn struct {
	nc      net.Conn
	in, out meter

	// Idle timeout, see SetIdleTimeout.
	clk       clock
	idle      atomic.Int64 // timeout in ns; 0 = off
	last      atomic.Int64 // clk.now() of the last activity
	idleFired atomic.Bool
	mu        sync.Mutex // guards timer and closed
	timer     timer
	closed    bool
}

// meter is one direction's Parser behind a mutex, so that Stats snapshots
// taken by other goroutines are consistent.
type meter struct {
	mu sync.Mutex
	p  Parser
}

func (m *meter) feed(b []byte) {
	m.mu.Lock()
	_ = m.p.Feed(b) // a violation is kept in Stats.Err; the bytes still pass
	m.mu.Unlock()
}

func (m *meter) stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p.Stats()
}

// NewConn wraps c, the hijacked client connection of a WebSocket upgrade.
func NewConn(c net.Conn) *Conn {
	return newConn(c, realClock{})
}

func newConn(c net.Conn, clk clock) *Conn {
	mc := &Conn{nc: c, clk: clk}
	mc.in.p.Mask = MaskRequired
	mc.out.p.Mask = MaskForbidden
	return mc
}

// In returns the client-to-upstream stats (bytes read from the client).
func (c *Conn) In() Stats { return c.in.stats() }

// Out returns the upstream-to-client stats (bytes written to the client).
func (c *Conn) Out() Stats { return c.out.stats() }

// Read reads client bytes from the wrapped conn and meters them.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.nc.Read(b)
	if n > 0 {
		c.touch()
		c.in.feed(b[:n])
	}
	return n, err
}

// Write writes upstream bytes to the wrapped conn and meters the bytes
// written.
func (c *Conn) Write(b []byte) (int, error) {
	c.touch() // a write in progress is activity, even if it blocks
	n, err := c.nc.Write(b)
	if n > 0 {
		c.touch()
		c.out.feed(b[:n])
	}
	return n, err
}

// Close stops the idle timer and closes the wrapped conn.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c.nc.Close()
}

// CloseWrite shuts down the writing side of the wrapped conn when it has a
// CloseWrite method (*net.TCPConn, *tls.Conn), so httputil.ReverseProxy's
// half-close propagation keeps working through the wrapper. Otherwise it
// returns an error wrapping errors.ErrUnsupported, which ends the proxying
// just as an unwrapped conn without CloseWrite would.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("wsmeter: %T has no CloseWrite: %w", c.nc, errors.ErrUnsupported)
}

// NetConn returns the wrapped conn. Bytes moved through it are not metered.
func (c *Conn) NetConn() net.Conn { return c.nc }

// LocalAddr returns the wrapped conn's local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the wrapped conn's remote address (the client).
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline sets the wrapped conn's read and write deadlines. It is
// independent of the idle timeout.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline sets the wrapped conn's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the wrapped conn's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// SetIdleTimeout closes the connection once no bytes have moved either way
// for d; d <= 0 turns the timeout off (the default). The clock starts at the
// call. [Conn.IdleTimedOut] then reports why the connection ended, and the
// blocked Read and Write return the wrapped conn's close error (net.ErrClosed
// for TCP).
//
// Cost: rather than moving a deadline on every Read and Write (a runtime
// timer update per call, and it would override deadlines the caller sets),
// each Read and Write that moves bytes stores the monotonic time in an atomic
// (one clock read, no lock), and a single time.AfterFunc timer checks it when
// it fires: if the connection was active it is re-armed for the time left,
// otherwise the wrapped conn is closed. A busy connection therefore costs one
// timer firing per d, and a connection with the timeout off costs one atomic
// load per call. A Write counts as activity when it starts and when it ends,
// so a write blocked by a client that stopped reading times out after d.
func (c *Conn) SetIdleTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.last.Store(c.clk.now())
	c.idle.Store(int64(d))
	switch {
	case d <= 0:
		if c.timer != nil {
			c.timer.Stop()
		}
	case c.timer == nil:
		c.timer = c.clk.afterFunc(d, c.checkIdle)
	default:
		c.timer.Reset(d)
	}
}

// IdleTimedOut reports whether the idle timeout closed the connection.
func (c *Conn) IdleTimedOut() bool { return c.idleFired.Load() }

// touch records activity when the idle timeout is on.
func (c *Conn) touch() {
	if c.idle.Load() > 0 {
		c.last.Store(c.clk.now())
	}
}

// checkIdle runs when the idle timer fires.
func (c *Conn) checkIdle() {
	c.mu.Lock()
	d := c.idle.Load()
	if c.closed || d <= 0 {
		c.mu.Unlock()
		return
	}
	if idle := c.clk.now() - c.last.Load(); idle < d {
		c.timer.Reset(time.Duration(d - idle))
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.idleFired.Store(true) // before Close, so a failed Read or Write sees it
	c.mu.Unlock()
	// Closed outside the lock: a *tls.Conn may block in Close while a Write
	// is stuck, and SetIdleTimeout and Close must not wait for that.
	_ = c.nc.Close() // the copy loops report the closed conn; nothing to add
}

// clock is the time source of the idle timeout; tests replace it.
type clock interface {
	now() int64 // monotonic nanoseconds
	afterFunc(d time.Duration, f func()) timer
}

// timer is the part of *time.Timer the idle timeout uses.
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// epoch anchors realClock; time.Since(epoch) uses the monotonic clock, so
// wall-clock jumps do not fire or postpone idle timeouts.
var epoch = time.Now()

type realClock struct{}

func (realClock) now() int64 { return int64(time.Since(epoch)) }

func (realClock) afterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
