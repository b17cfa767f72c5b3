package wsmeter

import (
	"net"
	"testing"
	"time"
)

// benchStream is n masked binary frames of size payload bytes each, as a
// browser sends them.
func benchStream(n, size int) []byte {
	payload := make([]byte, size)
	out := make([]byte, 0, n*(size+14))
	for range n {
		out = append(out, frame(true, opBinary, true, payload)...)
	}
	return out
}

// BenchmarkParserFeed feeds a stream of 1 KiB masked frames in the chunk
// sizes a proxy sees: io.Copy's 32 KiB buffer, a TCP segment, one frame.
func BenchmarkParserFeed(b *testing.B) {
	stream := benchStream(256, 1024) // 1032 bytes per frame
	for _, bc := range []struct {
		name  string
		chunk int
	}{{"chunk=32KiB", 32 << 10}, {"chunk=1460", 1460}, {"chunk=1032", 1032}} {
		b.Run(bc.name, func(b *testing.B) {
			p := Parser{Mask: MaskRequired}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				for s := stream; len(s) > 0; {
					k := min(bc.chunk, len(s))
					_ = p.Feed(s[:k])
					s = s[k:]
				}
			}
			if st := p.Stats(); st.Err != nil || st.Frames == 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

// memConn is an in-memory net.Conn: Read replays a frame stream forever and
// Write discards, so the benchmarks below measure the wrapper alone.
type memConn struct {
	src []byte
	off int
}

func (m *memConn) Read(b []byte) (int, error) {
	n := copy(b, m.src[m.off:])
	m.off = (m.off + n) % len(m.src)
	return n, nil
}
func (m *memConn) Write(b []byte) (int, error)      { return len(b), nil }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return nil }
func (m *memConn) RemoteAddr() net.Addr             { return nil }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkConn measures one Read (a 1 KiB masked client frame) and one Write
// (a 1 KiB unmasked upstream frame) through the raw conn, the metered conn,
// and the metered conn with an idle timeout.
func BenchmarkConn(b *testing.B) {
	in := benchStream(64, 1024)
	out := frame(true, opBinary, false, make([]byte, 1024))
	const frameIn = 1032
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"raw", func(c net.Conn) net.Conn { return c }},
		{"metered", func(c net.Conn) net.Conn { return NewConn(c) }},
		{"metered+idle", func(c net.Conn) net.Conn {
			mc := NewConn(c)
			mc.SetIdleTimeout(time.Hour)
			b.Cleanup(func() { _ = mc.Close() })
			return mc
		}},
	} {
		b.Run("Read/"+bc.name, func(b *testing.B) {
			c := bc.wrap(&memConn{src: in})
			buf := make([]byte, frameIn)
			b.SetBytes(frameIn)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Write/"+bc.name, func(b *testing.B) {
			c := bc.wrap(&memConn{})
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
