package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func newGRPCRequest(major int, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/grpc.testing.TestService/UnaryCall", nil)
	r.ProtoMajor = major
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// TestIsGRPC: gRPC dispatch needs HTTP/2 and application/grpc; gRPC-Web is
// not gRPC.
func TestIsGRPC(t *testing.T) {
	for _, tc := range []struct {
		ct    string
		major int
		want  bool
	}{
		{"application/grpc", 2, true},
		{"application/grpc+proto", 2, true},
		{"Application/GRPC;charset=utf-8", 2, true},
		{"application/grpc", 1, false},
		{"application/grpc-web", 2, false},
		{"application/grpcx", 2, false},
		{"application/json", 2, false},
		{"", 2, false},
	} {
		r := newGRPCRequest(tc.major, tc.ct)
		if got := IsGRPC(r); got != tc.want {
			t.Errorf("IsGRPC(HTTP/%d %q) = %v, want %v", tc.major, tc.ct, got, tc.want)
		}
	}
}

func TestIsGRPCDoesNotAllocate(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	g := newGRPCRequest(2, "application/grpc+proto")
	if n := testing.AllocsPerRun(100, func() { _ = IsGRPC(r) || IsGRPC(g) }); n != 0 {
		t.Fatalf("IsGRPC allocates %v times", n)
	}
}

func TestGRPCCodeName(t *testing.T) {
	if got := GRPCCodeName(codes.Code(42)); got != "42" {
		t.Errorf("GRPCCodeName(42) = %q", got)
	}
}

// FuzzGRPCMethod: the :path parser accepts exactly "/service/method" with
// both parts non-empty, and returns the path without its slash.
func FuzzGRPCMethod(f *testing.F) {
	for _, s := range []string{"/grpc.testing.TestService/UnaryCall", "/a/b", "/", "//", "/a/", "//b",
		"/a/b/c", "a/b", "", "/svc/m?x=1", "/\x00/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		m, ok := GRPCMethod(path)
		parts := strings.Split(path, "/")
		want := len(parts) == 3 && parts[0] == "" && parts[1] != "" && parts[2] != ""
		if ok != want {
			t.Fatalf("GRPCMethod(%q) ok = %v, want %v", path, ok, want)
		}
		if ok && "/"+m != path {
			t.Fatalf("GRPCMethod(%q) = %q", path, m)
		}
	})
}

// FuzzParseGRPCStatus: grpc-status is 1*DIGIT fitting a uint32, as strconv
// reads it.
func FuzzParseGRPCStatus(f *testing.F) {
	for _, s := range []string{"0", "5", "14", "16", "4294967295", "4294967296", "", "-1", "+1", " 1", "1a",
		"00000000001", "00000000014"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseGRPCStatus(s)
		n, err := strconv.ParseUint(s, 10, 32)
		want := err == nil && s[0] != '+' && len(s) <= 10
		if ok != want {
			t.Fatalf("ParseGRPCStatus(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && uint64(c) != n {
			t.Fatalf("ParseGRPCStatus(%q) = %d, want %d", s, c, n)
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
		enc := EncodeGRPCMessage(msg)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("EncodeGRPCMessage(%q) = %q has byte %#x", msg, enc, enc[i])
			}
		}
		if dec, err := url.PathUnescape(enc); err != nil || dec != msg {
			t.Fatalf("EncodeGRPCMessage(%q) = %q decodes to %q, %v", msg, enc, dec, err)
		}
	})
}
