package grpcproxy

import "sync"

// copyBufSize is the size of the buffers that carry responses from the
// destination to the app. ReverseProxy without a BufferPool allocates 32 KiB per
// request; the pool reuses them.
const copyBufSize = 32 << 10

type copyBuf [copyBufSize]byte

var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

// bufferPool implements httputil.BufferPool over fixed-size arrays, so that
// neither Get nor Put allocates (a pool of []byte would box each slice).
type bufferPool struct{}

func (bufferPool) Get() []byte { return copyBufs.Get().(*copyBuf)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) < copyBufSize {
		return
	}
	copyBufs.Put((*copyBuf)(b[:copyBufSize]))
}
