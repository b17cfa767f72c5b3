package httpproxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"
)

// chunkReader returns at most size bytes per Read, as a client's DATA
// frames would arrive.
type chunkReader struct {
	b    []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// FuzzGRPCIdempotencyRequest feeds arbitrary request bodies, split at any
// size, to the reader of protected gRPC calls: one message within the caps
// is accepted byte for byte; anything else is refused with the status that
// names why (FAILED_PRECONDITION for a second message, RESOURCE_EXHAUSTED
// over a cap), never forwarded.
func FuzzGRPCIdempotencyRequest(f *testing.F) {
	const maxBody, maxMsg = 64, 40
	frame := func(flag byte, payload []byte) []byte {
		b := []byte{flag, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(payload))) // #nosec G115 -- seeds are small
		return append(b, payload...)
	}
	f.Add(frame(0, []byte("hello")), uint8(3))
	f.Add(frame(0, nil), uint8(0))
	f.Add(append(frame(0, []byte("a")), frame(0, []byte("b"))...), uint8(1))
	f.Add(frame(1, make([]byte, maxMsg)), uint8(100))
	f.Add(frame(0, make([]byte, maxMsg+1)), uint8(7))
	f.Add([]byte{0, 0, 0, 0xff, 0xff}, uint8(2))
	f.Add([]byte{0, 0, 0}, uint8(0))
	f.Add(make([]byte, maxBody+1), uint8(255))
	f.Add([]byte{}, uint8(0))

	u, _ := url.Parse("http://app.local")
	h, err := New(Settings{Upstream: u, GRPCMaxRecvMessageBytes: maxMsg,
		Idempotency: &IdempotencySettings{MaxRequestBytes: maxBody}},
		Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(h.Close)
	span := noop.Span{}

	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		req := httptest.NewRequest(http.MethodPost, "http://front.local/pkg.Svc/Do", &chunkReader{b: data, size: int(split) + 1})
		req.ProtoMajor, req.ProtoMinor, req.ContentLength = 2, 0, -1
		req.Header.Set("Content-Type", "application/grpc")
		rec := httptest.NewRecorder()
		rw := new(responseWriter)
		rw.reset(rec, h)
		rw.grpc = true

		body, ok := h.idem.readGRPCBody(rw, req, span)

		single, fits := true, len(data) <= maxBody
		if len(data) >= grpcPrefixLen {
			length := int64(binary.BigEndian.Uint32(data[1:grpcPrefixLen]))
			single = int64(len(data)) <= grpcPrefixLen+length
			fits = fits && length <= maxMsg
		}
		if ok {
			if !single || !fits {
				t.Fatalf("accepted %d bytes: single message %v, within the caps %v", len(data), single, fits)
			}
			if !bytes.Equal(body, data) {
				t.Fatalf("accepted body %x, sent %x", body, data)
			}
			if rec.Header().Get(headerGRPCStatus) != "" {
				t.Fatal("accepted, yet answered")
			}
			return
		}
		code, valid := grpcStatusOf(rec.Header()[headerGRPCStatus])
		switch {
		case !valid:
			t.Fatalf("refused without a gRPC status: %v", rec.Header())
		case single && fits:
			t.Fatalf("refused one message within the caps with %v", code)
		case code == codes.FailedPrecondition && single:
			t.Fatal("FAILED_PRECONDITION for a single message")
		case code == codes.ResourceExhausted && fits:
			t.Fatal("RESOURCE_EXHAUSTED within the caps")
		case code != codes.FailedPrecondition && code != codes.ResourceExhausted:
			t.Fatalf("refused with %v", code)
		}
	})
}
