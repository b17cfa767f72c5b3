package httpproxy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// errStreamIdle is the cause recorded when a streaming response is cut for
// carrying no bytes for Settings.StreamIdleTimeout.
var errStreamIdle = errors.New("stream idle timeout: no bytes from the upstream")

// idleBody closes a streaming response body that carries no bytes for d.
// One timer per stream, re-armed lazily from an atomic activity stamp, so a
// busy stream pays one clock read per Read instead of a timer reset.
type idleBody struct {
	io.ReadCloser
	d      time.Duration
	last   atomic.Int64 // monotonic nanoseconds since idleEpoch
	timer  *time.Timer
	fired  atomic.Bool
	closed sync.Once
}

var idleEpoch = time.Now()

func newIdleBody(body io.ReadCloser, d time.Duration) *idleBody {
	b := &idleBody{ReadCloser: body, d: d}
	b.last.Store(int64(time.Since(idleEpoch)))
	b.timer = time.AfterFunc(d, b.check)
	return b
}

func (b *idleBody) check() {
	idle := time.Duration(int64(time.Since(idleEpoch)) - b.last.Load())
	if idle < b.d {
		b.timer.Reset(b.d - idle)
		return
	}
	b.fired.Store(true)
	_ = b.ReadCloser.Close() // unblocks the copy loop's Read
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.last.Store(int64(time.Since(idleEpoch)))
	if err != nil && b.fired.Load() {
		return n, errStreamIdle
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	var err error
	b.closed.Do(func() { err = b.ReadCloser.Close() })
	return err
}
