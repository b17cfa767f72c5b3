package httpproxy

import (
	"testing"

	"github.com/tracecar/tracecar/proxy"
)

// FuzzGRPCSpanName: the span is named by the :path's method when
// proxy.GRPCMethod finds one, else "grpc" ({rpc.system.name}).
func FuzzGRPCSpanName(f *testing.F) {
	for _, s := range []string{"/grpc.testing.TestService/UnaryCall", "/a/b", "/", "//", "/a/", "//b",
		"/a/b/c", "a/b", "", "/svc/m?x=1", "/\x00/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		m, ok := proxy.GRPCMethod(path)
		if name := grpcSpanName(path); ok && name != m || !ok && name != "grpc" {
			t.Fatalf("grpcSpanName(%q) = %q", path, name)
		}
	})
}
