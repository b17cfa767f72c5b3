package proxy

import "sync"

// CopyBufSize is the size of the buffers that carry bodies between the two
// ends of a proxied exchange. ReverseProxy without a BufferPool allocates
// 32 KiB per request; BufferPool reuses them.
const CopyBufSize = 32 << 10

type copyBuf [CopyBufSize]byte

var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

// BufferPool implements httputil.BufferPool over fixed-size arrays of
// CopyBufSize bytes, so that neither Get nor Put allocates (a pool of
// []byte would box each slice). Its zero value is ready to use, and all
// BufferPool values share one pool.
type BufferPool struct{}

// Get returns a buffer of CopyBufSize bytes.
func (BufferPool) Get() []byte { return copyBufs.Get().(*copyBuf)[:] }

// Put returns b to the pool; a buffer shorter than CopyBufSize (not one Get
// returned) is dropped.
func (BufferPool) Put(b []byte) {
	if cap(b) < CopyBufSize {
		return
	}
	copyBufs.Put((*copyBuf)(b[:CopyBufSize]))
}
