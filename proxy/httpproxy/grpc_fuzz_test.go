package httpproxy

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzGRPCMethod: the :path parser accepts exactly "/service/method" with
// both parts non-empty, and returns the path without its slash.
func FuzzGRPCMethod(f *testing.F) {
	for _, s := range []string{"/grpc.testing.TestService/UnaryCall", "/a/b", "/", "//", "/a/", "//b",
		"/a/b/c", "a/b", "", "/svc/m?x=1", "/\x00/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		m, ok := grpcMethod(path)
		parts := strings.Split(path, "/")
		want := len(parts) == 3 && parts[0] == "" && parts[1] != "" && parts[2] != ""
		if ok != want {
			t.Fatalf("grpcMethod(%q) ok = %v, want %v", path, ok, want)
		}
		if ok && "/"+m != path {
			t.Fatalf("grpcMethod(%q) = %q", path, m)
		}
		if name := grpcSpanName(path); ok && name != m || !ok && name != "grpc" {
			t.Fatalf("grpcSpanName(%q) = %q", path, name)
		}
	})
}

// FuzzParseGRPCStatus: grpc-status is 1*DIGIT fitting a uint32.
func FuzzParseGRPCStatus(f *testing.F) {
	for _, s := range []string{"0", "5", "16", "4294967295", "4294967296", "", "-1", "+1", " 1", "1a", "00000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseGRPCStatus(s)
		n, err := strconv.ParseUint(s, 10, 32)
		want := err == nil && s[0] != '+' && len(s) <= 10
		if ok != want {
			t.Fatalf("parseGRPCStatus(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && uint64(c) != n {
			t.Fatalf("parseGRPCStatus(%q) = %d, want %d", s, c, n)
		}
	})
}

// FuzzEncodeGRPCMessage: the encoding is printable ASCII and decodes back
// to the message.
func FuzzEncodeGRPCMessage(f *testing.F) {
	for _, s := range []string{"", "no such order", "100%", "ünï\ncode", "\x00\x7f\xff", "%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		enc := encodeGRPCMessage(msg)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("encodeGRPCMessage(%q) = %q has byte %#x", msg, enc, enc[i])
			}
		}
		if dec, err := url.PathUnescape(enc); err != nil || dec != msg {
			t.Fatalf("encodeGRPCMessage(%q) = %q decodes to %q, %v", msg, enc, dec, err)
		}
	})
}
