package egress

import (
	"errors"
	"strings"
	"testing"
)

func TestAllowListMatching(t *testing.T) {
	a, err := ParseAllowList([]string{
		"api.example.com", "pay.example.org:443", "*.svc.cluster.local", "*.cdn.test:8443",
		"10.0.0.0/8", "127.0.0.1", "[::1]:8080", "fd00::/8", " Upper.Example.NET. ",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		port uint16
		want bool
	}{
		{"api.example.com", 80, true},
		{"API.Example.com.", 443, true},
		{"other.example.com", 80, false},
		{"pay.example.org", 443, true},
		{"pay.example.org", 80, false},
		{"orders.svc.cluster.local", 80, true},
		{"a.b.svc.cluster.local", 9000, true},
		{"svc.cluster.local", 80, false}, // the wildcard is for subdomains only
		{"evilsvc.cluster.local", 80, false},
		{"x.cdn.test", 8443, true},
		{"x.cdn.test", 443, false},
		{"10.1.2.3", 5432, true},
		{"11.1.2.3", 5432, false},
		{"127.0.0.1", 1, true},
		{"127.0.0.2", 1, false},
		{"::ffff:10.0.0.1", 80, true}, // IPv4-mapped IPv6 is the IPv4 address
		{"::1", 8080, true},
		{"[::1]", 8080, true},
		{"::1", 8081, false},
		{"fd12::1", 80, true},
		{"upper.example.net", 1234, true},
		{"localhost", 80, false},
		{"", 80, false},
		{"bad host", 80, false},
	} {
		if got := a.Allows(tc.host, tc.port); got != tc.want {
			t.Errorf("Allows(%q, %d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}

func TestAllowListEmptyAllowsAll(t *testing.T) {
	for _, entries := range [][]string{nil, {}, {" ", ""}, {"*"}, {"example.com", "*"}} {
		a, err := ParseAllowList(entries)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Allows("anything.example", 1) || !a.Allows("192.0.2.1", 65535) {
			t.Errorf("%q does not allow every destination", entries)
		}
	}
	var nilList *AllowList
	if !nilList.Allows("x", 1) {
		t.Error("nil list denies")
	}
}

func TestAllowListRejectsBadEntries(t *testing.T) {
	for _, e := range []string{
		"example.com:0", "example.com:65536", "example.com:http", "example.com:", "*.", "*", "**.example.com",
		"ex ample.com", "example..com", "a*.example.com", "10.0.0.0/33", "10.0.0.0/x", "[example.com]:80",
		"http://example.com", strings.Repeat("a", 64) + ".com", "-.com:80:80",
	} {
		if e == "*" {
			continue // "*" is valid: every destination
		}
		_, err := ParseAllowList([]string{"ok.example", e})
		if !errors.Is(err, ErrBadAllowEntry) || !strings.Contains(err.Error(), e) {
			t.Errorf("ParseAllowList(%q) error = %v, want ErrBadAllowEntry quoting it", e, err)
		}
	}
}

// FuzzAllowList checks that parsing and matching never panic on any
// configuration and destination, that matching ignores case and one
// trailing dot, and that an accepted host entry allows its own host.
func FuzzAllowList(f *testing.F) {
	for _, s := range [][2]string{
		{"api.example.com", "api.example.com"},
		{"*.example.com:443", "a.example.com"},
		{"10.0.0.0/8,127.0.0.1", "10.9.8.7"},
		{"[::1]:8080", "[::1]"},
		{"fe80::1%eth0", "fe80::1"},
		{"::ffff:1.2.3.4", "1.2.3.4"},
		{"*", "anything"},
		{"a..b,c", "c."},
		{"", ""},
		{"1.2.3.4.", "1.2.3.4."},
	} {
		f.Add(s[0], s[1], uint16(443))
	}
	f.Fuzz(func(t *testing.T, entries, host string, port uint16) {
		a, err := ParseAllowList(strings.Split(entries, ","))
		if err != nil {
			if !errors.Is(err, ErrBadAllowEntry) {
				t.Fatalf("error %v does not wrap ErrBadAllowEntry", err)
			}
			return
		}
		got := a.Allows(host, port)
		if up := strings.ToUpper(host); a.Allows(up, port) != got {
			t.Fatalf("Allows(%q) = %v but Allows(%q) differs", host, got, up)
		}
		if name, ok := normalHost(host); ok && !strings.HasSuffix(host, ".") && a.Allows(name+".", port) != got {
			t.Fatalf("Allows(%q) = %v but the trailing-dot form differs", host, got)
		}
		for _, e := range strings.Split(entries, ",") {
			e = strings.TrimSpace(e)
			if name, ok := normalHost(e); ok && port != 0 && !a.Allows(name, port) {
				t.Fatalf("entry %q does not allow its own host", e)
			}
		}
	})
}
