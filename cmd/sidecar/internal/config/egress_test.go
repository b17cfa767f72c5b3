package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadEgressAllow(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{"", nil},
		{"api.example.com", []string{"api.example.com"}},
		{" API.Example.COM:443 ", []string{"api.example.com:443"}},
		{"example.com.", []string{"example.com"}},
		{"*.Internal", []string{"*.internal"}},
		{"*.example.com:8080", []string{"*.example.com:8080"}},
		{"*.com", []string{"*.com"}},
		{"localhost,localhost:80", []string{"localhost", "localhost:80"}},
		{"xn--bcher-kva.de,a-b.c,a1.b2", []string{"xn--bcher-kva.de", "a-b.c", "a1.b2"}},
		{strings.Repeat("a", 63) + ".io", []string{strings.Repeat("a", 63) + ".io"}},
		{"10.1.2.3", []string{"10.1.2.3"}},
		{"10.1.2.3:080", []string{"10.1.2.3:80"}},
		{"api.example.com:65535", []string{"api.example.com:65535"}},
		{"my_service:8080", []string{"my_service:8080"}}, // Compose service names
		{"::1", []string{"::1"}},
		{"2001:DB8:0::1", []string{"2001:db8::1"}},
		{"[::1]", []string{"::1"}},
		{"[2001:db8:0:0::1]:443", []string{"[2001:db8::1]:443"}},
		{"::FFFF:10.0.0.1", []string{"::ffff:10.0.0.1"}},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}},
		{"FD00::/8,0.0.0.0/0,10.1.2.3/32", []string{"fd00::/8", "0.0.0.0/0", "10.1.2.3/32"}},
		{"a,A,a.,b,,", []string{"a", "b"}},
		{"api.example.com:443,api.example.com:0443", []string{"api.example.com:443"}},
		{strings.Repeat("a.", 126) + "a.", []string{strings.Repeat("a.", 126) + "a"}}, // 253 bytes and the root
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_EGRESS_ALLOW": tt.raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.EgressAllow, tt.want) {
				t.Errorf("EgressAllow = %q, want %q", c.EgressAllow, tt.want)
			}
		})
	}
}

const wantAllow = "want a comma-separated list of host, host:port, *.domain, IP, IP:port, [IPv6]:port or CIDR such as api.example.com:443,*.internal,10.0.0.0/8"

func TestLoadEgressErrors(t *testing.T) {
	const allow = "TRACECAR_EGRESS_ALLOW"
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		// TRACECAR_EGRESS_ALLOW
		{"bad allow entry", map[string]string{allow: "api.example.com,bad host"},
			`TRACECAR_EGRESS_ALLOW="api.example.com,bad host": entry "bad host": invalid character ' ' in host name; ` + wantAllow},
		{"bad CIDR", map[string]string{allow: "10.0.0.0/33"},
			`TRACECAR_EGRESS_ALLOW="10.0.0.0/33": entry "10.0.0.0/33": invalid CIDR prefix; ` + wantAllow},
		{"CIDR with a port", map[string]string{allow: "10.0.0.0/8:443"},
			`TRACECAR_EGRESS_ALLOW="10.0.0.0/8:443": entry "10.0.0.0/8:443": invalid CIDR prefix; ` + wantAllow},
		{"CIDR host bits", map[string]string{allow: "10.1.2.3/8"},
			`TRACECAR_EGRESS_ALLOW="10.1.2.3/8": entry "10.1.2.3/8": host bits set in CIDR prefix, which would be 10.0.0.0/8; ` + wantAllow},
		{"port 0", map[string]string{allow: "api.example.com:0"},
			`TRACECAR_EGRESS_ALLOW="api.example.com:0": entry "api.example.com:0": port out of range; ` + wantAllow},
		{"port 65536", map[string]string{allow: "[::1]:65536"},
			`TRACECAR_EGRESS_ALLOW="[::1]:65536": entry "[::1]:65536": port out of range; ` + wantAllow},
		{"named port", map[string]string{allow: "api.example.com:https"},
			`TRACECAR_EGRESS_ALLOW="api.example.com:https": entry "api.example.com:https": port not a number; ` + wantAllow},
		{"empty port", map[string]string{allow: "10.0.0.1:"},
			`TRACECAR_EGRESS_ALLOW="10.0.0.1:": entry "10.0.0.1:": missing port; ` + wantAllow},
		{"port without host", map[string]string{allow: ":443"},
			`TRACECAR_EGRESS_ALLOW=":443": entry ":443": missing host; ` + wantAllow},
		{"wildcard inside", map[string]string{allow: "api.*.example.com"},
			`TRACECAR_EGRESS_ALLOW="api.*.example.com": entry "api.*.example.com": wildcard only as a leading "*." label; ` + wantAllow},
		{"wildcard alone", map[string]string{allow: "*"},
			`TRACECAR_EGRESS_ALLOW="*": entry "*": wildcard only as a leading "*." label; ` + wantAllow},
		{"wildcard without dot", map[string]string{allow: "*example.com"},
			`TRACECAR_EGRESS_ALLOW="*example.com": entry "*example.com": wildcard only as a leading "*." label; ` + wantAllow},
		{"wildcard of nothing", map[string]string{allow: "*."},
			`TRACECAR_EGRESS_ALLOW="*.": entry "*.": missing host; ` + wantAllow},
		{"empty label", map[string]string{allow: "api..example.com"},
			`TRACECAR_EGRESS_ALLOW="api..example.com": entry "api..example.com": empty label in host name; ` + wantAllow},
		{"leading hyphen", map[string]string{allow: "-api.example.com"},
			`TRACECAR_EGRESS_ALLOW="-api.example.com": entry "-api.example.com": label begins or ends with a hyphen; ` + wantAllow},
		{"label of 64", map[string]string{allow: long + ".io"},
			`TRACECAR_EGRESS_ALLOW="` + long + `…": entry "` + long + `…": label longer than 63 bytes; ` + wantAllow},
		{"name of 255", map[string]string{allow: strings.Repeat("a.", 127) + "a"},
			`TRACECAR_EGRESS_ALLOW="` + strings.Repeat("a.", 32) + `…": entry "` + strings.Repeat("a.", 32) + `…": host name longer than 253 bytes; ` + wantAllow},
		{"unicode name", map[string]string{allow: "bücher.de"},
			`TRACECAR_EGRESS_ALLOW="bücher.de": entry "bücher.de": invalid character 'ü' in host name; ` + wantAllow},
		{"IPv4 out of range", map[string]string{allow: "256.1.1.1"},
			`TRACECAR_EGRESS_ALLOW="256.1.1.1": entry "256.1.1.1": not an IP address; ` + wantAllow},
		{"numeric name", map[string]string{allow: "10.1.2"},
			`TRACECAR_EGRESS_ALLOW="10.1.2": entry "10.1.2": not an IP address; ` + wantAllow},
		{"bad IPv6", map[string]string{allow: "fd00::1::2"},
			`TRACECAR_EGRESS_ALLOW="fd00::1::2": entry "fd00::1::2": not an IP address; ` + wantAllow},
		{"IPv6 zone", map[string]string{allow: "[fe80::1%eth0]:443"},
			`TRACECAR_EGRESS_ALLOW="[fe80::1%eth0]:443": entry "[fe80::1%eth0]:443": IPv6 zone not allowed; ` + wantAllow},
		{"IPv4 in brackets", map[string]string{allow: "[10.0.0.1]:80"},
			`TRACECAR_EGRESS_ALLOW="[10.0.0.1]:80": entry "[10.0.0.1]:80": brackets only around an IPv6 address; ` + wantAllow},
		{"missing bracket", map[string]string{allow: "[::1:443"},
			`TRACECAR_EGRESS_ALLOW="[::1:443": entry "[::1:443": missing ]; ` + wantAllow},
		{"text after bracket", map[string]string{allow: "[::1]443"},
			`TRACECAR_EGRESS_ALLOW="[::1]443": entry "[::1]443": text after ] other than :port; ` + wantAllow},
		{"URL", map[string]string{allow: "https://api.example.com/"},
			`TRACECAR_EGRESS_ALLOW="https://api.example.com/": entry "https://api.example.com/": a URL, not a host; ` + wantAllow},
		{"no destination", map[string]string{allow: " , "},
			`TRACECAR_EGRESS_ALLOW=" , ": no destination named; ` + wantAllow},

		// The other TRACECAR_EGRESS_* variables
		{"egress bad port", map[string]string{"TRACECAR_EGRESS_ADDR": "127.0.0.1:99999"},
			`TRACECAR_EGRESS_ADDR="127.0.0.1:99999": port out of range; ` + wantAddr},
		{"egress grpc bad port", map[string]string{"TRACECAR_EGRESS_GRPC_ADDR": "127.0.0.1:70000"},
			`TRACECAR_EGRESS_GRPC_ADDR="127.0.0.1:70000": port out of range; ` + wantAddr},
		{"egress addr without port", map[string]string{"TRACECAR_EGRESS_ADDR": "localhost"},
			`TRACECAR_EGRESS_ADDR="localhost": missing port in address; ` + wantAddr},
		{"egress enabled yes", map[string]string{"TRACECAR_EGRESS_ENABLED": "yes"},
			`TRACECAR_EGRESS_ENABLED="yes": not true or false; want true or false`},
		{"egress concurrency 0", map[string]string{"TRACECAR_EGRESS_MAX_CONCURRENT": "0"},
			`TRACECAR_EGRESS_MAX_CONCURRENT="0": out of range; want an integer 1-1000000`},
		{"egress concurrency too high", map[string]string{"TRACECAR_EGRESS_MAX_CONCURRENT": "1000001"},
			`TRACECAR_EGRESS_MAX_CONCURRENT="1000001": out of range; want an integer 1-1000000`},
		{"egress negative timeout", map[string]string{"TRACECAR_EGRESS_TIMEOUT": "-1s"},
			`TRACECAR_EGRESS_TIMEOUT="-1s": negative duration; ` + wantDuration},
		{"egress timeout without unit", map[string]string{"TRACECAR_EGRESS_TIMEOUT": "30"},
			`TRACECAR_EGRESS_TIMEOUT="30": not a duration; ` + wantDuration},
		{"serial inference maybe", map[string]string{"TRACECAR_EGRESS_SERIAL_INFERENCE": "maybe"},
			`TRACECAR_EGRESS_SERIAL_INFERENCE="maybe": not true or false; want true or false`},

		// TRACECAR_STITCH_*
		{"stitch entries 0", map[string]string{"TRACECAR_STITCH_MAX_ENTRIES": "0"},
			`TRACECAR_STITCH_MAX_ENTRIES="0": out of range; want an integer 1-10000000`},
		{"stitch entries too many", map[string]string{"TRACECAR_STITCH_MAX_ENTRIES": "10000001"},
			`TRACECAR_STITCH_MAX_ENTRIES="10000001": out of range; want an integer 1-10000000`},
		{"stitch ttl 0", map[string]string{"TRACECAR_STITCH_TTL": "0s"},
			`TRACECAR_STITCH_TTL="0s": shorter than 1ms; ` + wantPositive},
		{"stitch ttl garbage", map[string]string{"TRACECAR_STITCH_TTL": "forever"},
			`TRACECAR_STITCH_TTL="forever": not a duration; ` + wantPositive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadError(t, tt.env, tt.want) })
	}
}

func TestLoadEgressEdgeValues(t *testing.T) {
	c, err := Load(map[string]string{
		"TRACECAR_UPSTREAM":              upstream,
		"TRACECAR_EGRESS_ADDR":           ":0",
		"TRACECAR_EGRESS_MAX_CONCURRENT": "1",
		"TRACECAR_EGRESS_TIMEOUT":        "1ns",
		"TRACECAR_STITCH_MAX_ENTRIES":    "1",
		"TRACECAR_STITCH_TTL":            "1h",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.EgressAddr != ":0" || c.EgressMaxConcurrent != 1 || c.EgressTimeout != 1 ||
		c.StitchMaxEntries != 1 || c.StitchTTL != time.Hour {
		t.Errorf("loaded %+v", c)
	}
}
