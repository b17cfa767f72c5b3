package grpcproxy

import "testing"

// FuzzDestination checks that any :authority either is refused or yields a
// host, a port 1-65535 and a key that parses back to the same destination.
func FuzzDestination(f *testing.F) {
	for _, s := range []string{
		"orders.internal:50051", "ORDERS.internal:443", "[::1]:8080", "127.0.0.1:0", "orders.internal",
		"orders.internal:", ":50051", "host:65536", "host:-1", "host:+80", "[::1]", "a:b:c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authority string) {
		host, port, key, err := destination(authority)
		if err != nil {
			return
		}
		if host == "" || port == 0 {
			t.Fatalf("%q: host %q port %d", authority, host, port)
		}
		h2, p2, k2, err := destination(key)
		if err != nil || h2 != host || p2 != port || k2 != key {
			t.Fatalf("%q: key %q parses to %q %d %q %v", authority, key, h2, p2, k2, err)
		}
	})
}
