package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// checkEgressAllow parses the comma list of destinations into
// c.EgressAllow, each entry normalised (see [Config.EgressAllow]), empty
// entries skipped and duplicates dropped. Only the empty text means any
// destination: a text that names none, such as " , ", is refused, since
// whoever wrote it meant to restrict.
func checkEgressAllow(c *Config, f field, raw string) *Error {
	if raw == "" {
		c.EgressAllow = nil
		return nil
	}
	var list []string
	seen := map[string]bool{}
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		dest, reason := normalizeDestination(item)
		if reason != "" {
			return f.fail(raw, "entry "+strconv.Quote(truncate(item))+": "+reason)
		}
		if !seen[dest] {
			seen[dest] = true
			list = append(list, dest)
		}
	}
	if len(list) == 0 {
		return f.fail(raw, "no destination named")
	}
	c.EgressAllow = list
	return nil
}

// normalizeDestination checks one allow-list entry, trimmed, and returns
// it in normal form, or the reason it is refused.
func normalizeDestination(s string) (dest, reason string) {
	s = strings.ToLower(s)
	switch {
	case strings.Contains(s, "://"):
		return "", "a URL, not a host"
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", "invalid CIDR prefix"
		}
		if m := p.Masked(); m != p {
			return "", "host bits set in CIDR prefix, which would be " + m.String()
		}
		return p.String(), ""
	}
	host, port, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "missing ]"
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return "", "text after ] other than :port"
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "brackets only around an IPv6 address"
		}
	case strings.Count(s, ":") == 1:
		host, port, hasPort = strings.Cut(s, ":")
	}
	// Otherwise s has no port: with two colons or more it can only be a
	// bare IPv6 address, which takes brackets to carry a port.
	if host, reason = normalizeHost(host); reason != "" {
		return "", reason
	}
	if !hasPort {
		return host, ""
	}
	n, reason := parsePort(port)
	if reason != "" {
		return "", reason
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(n), ""
}

// normalizeHost accepts an IP address, in canonical form, or a host name,
// optionally under a leading "*." wildcard label, without its final dot.
func normalizeHost(h string) (string, string) {
	if h == "" {
		return "", "missing host"
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", "IPv6 zone not allowed"
		}
		return a.String(), ""
	}
	if strings.Contains(h, ":") {
		return "", "not an IP address"
	}
	name, wildcard := strings.CutPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return "", `wildcard only as a leading "*." label`
	}
	// example.com. (rooted) names the same host as example.com.
	name = strings.TrimSuffix(name, ".")
	if reason := checkHostname(name); reason != "" {
		return "", reason
	}
	if wildcard {
		name = "*." + name
	}
	return name, ""
}

// checkHostname checks a host name against RFC 1123 §2.1: labels of 1-63
// letters, digits and hyphens, neither beginning nor ending with a hyphen,
// 253 bytes in all. A name whose last label is all digits is refused: URL
// parsers read it as an IPv4 address, so it is a mistyped one.
func checkHostname(name string) string {
	switch {
	case name == "":
		return "missing host"
	case len(name) > 253:
		return "host name longer than 253 bytes"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "empty label in host name"
		case len(l) > 63:
			return "label longer than 63 bytes"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "label begins or ends with a hyphen"
		}
		for _, r := range l {
			if !isLDH(r) {
				return fmt.Sprintf("invalid character %q in host name", r)
			}
		}
	}
	if isDigits(labels[len(labels)-1]) {
		return "not an IP address"
	}
	return ""
}

// isLDH reports whether r is a letter, digit or hyphen, the characters of
// a host name label (RFC 1123 §2.1, RFC 952).
// isLDH accepts letters, digits and hyphens (RFC 1123), and also the
// underscore, which Docker Compose and SRV-style service names use.
func isLDH(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// parsePort parses a decimal port 1-65535.
func parsePort(p string) (int, string) {
	if p == "" {
		return 0, "missing port"
	}
	if !isDigits(p) {
		return 0, "port not a number"
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, "port out of range"
	}
	return int(n), ""
}
