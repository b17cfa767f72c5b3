package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadAllowEntry is wrapped by ParseAllowList for an entry it cannot use.
var ErrBadAllowEntry = errors.New("egress: bad allow-list entry")

// AllowList decides which destinations the egress proxy may reach. It
// matches the destination as the app named it (the host of an absolute-form
// URL or of a CONNECT authority) and never resolves names: a hostname is
// allowed only by a host or wildcard entry, an IP literal only by an IP or
// CIDR entry. The zero value (and nil) allows every destination.
type AllowList struct {
	any       bool
	hosts     map[string][]uint16 // exact host name → ports (0: any port)
	wildcards map[string][]uint16 // "example.com" for "*.example.com" → ports
	prefixes  []allowPrefix       // IP and CIDR entries
}

type allowPrefix struct {
	prefix netip.Prefix
	port   uint16 // 0: any port
}

// ParseAllowList parses allow-list entries. Each is one of
//
//	host             api.example.com      (any port)
//	host:port        api.example.com:443
//	*.suffix         *.example.com        (any subdomain, not example.com itself; :port allowed)
//	IP               127.0.0.1, ::1, [::1]:8080
//	CIDR             10.0.0.0/8, fd00::/8
//	*                every destination
//
// Host names are compared case-insensitively, without a trailing dot. An
// empty list allows every destination. A bad entry is an error wrapping
// ErrBadAllowEntry that quotes it.
func ParseAllowList(entries []string) (*AllowList, error) {
	a := &AllowList{hosts: map[string][]uint16{}, wildcards: map[string][]uint16{}}
	n := 0
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		n++
		if err := a.add(e); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadAllowEntry, raw, err)
		}
	}
	if n == 0 {
		a.any = true
	}
	return a, nil
}

func (a *AllowList) add(e string) error {
	if e == "*" {
		a.any = true
		return nil
	}
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return errors.New("not a CIDR prefix (want e.g. 10.0.0.0/8)")
		}
		a.prefixes = append(a.prefixes, allowPrefix{prefix: p.Masked()})
		return nil
	}
	host, port, err := splitEntry(e)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
		ip = ip.Unmap().WithZone("")
		a.prefixes = append(a.prefixes, allowPrefix{prefix: netip.PrefixFrom(ip, ip.BitLen()), port: port})
		return nil
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		name, ok := normalHost(rest)
		if !ok {
			return errors.New("wildcard must be *. followed by a host name")
		}
		a.wildcards[name] = append(a.wildcards[name], port)
		return nil
	}
	name, ok := normalHost(host)
	if !ok {
		return errors.New("not a host name, IP, CIDR or *.suffix")
	}
	a.hosts[name] = append(a.hosts[name], port)
	return nil
}

// splitEntry separates an optional port from an entry.
func splitEntry(e string) (host string, port uint16, err error) {
	if strings.HasPrefix(e, "[") || strings.Count(e, ":") == 1 {
		h, p, err := net.SplitHostPort(e)
		if err != nil {
			return "", 0, errors.New("malformed host:port")
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return "", 0, errors.New("port must be 1-65535")
		}
		if strings.HasPrefix(e, "[") {
			if _, err := netip.ParseAddr(h); err != nil {
				return "", 0, errors.New("brackets must hold an IPv6 address")
			}
		}
		return h, uint16(n), nil
	}
	return e, 0, nil // a bare host, or an IPv6 address without a port
}

// normalHost lower-cases a DNS host name and drops one trailing dot. It
// accepts letters, digits, '-' and '_' in dot-separated non-empty labels, up
// to 253 bytes.
func normalHost(h string) (string, bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
		default:
			return "", false
		}
		label++
		if label > 63 {
			return "", false
		}
	}
	if label == 0 {
		return "", false
	}
	return strings.ToLower(h), true
}

// Allows reports whether the destination host (a name or an IP literal,
// IPv6 with or without brackets) and port may be reached.
func (a *AllowList) Allows(host string, port uint16) bool {
	if a == nil || a.any {
		return true
	}
	h := host
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	// "10.0.0.1." is the IP 10.0.0.1 to some resolvers: match it as one.
	if ip, err := netip.ParseAddr(strings.TrimSuffix(h, ".")); err == nil {
		ip = ip.Unmap().WithZone("")
		for _, p := range a.prefixes {
			if p.prefix.Contains(ip) && portOK(p.port, port) {
				return true
			}
		}
		return false
	}
	name, ok := normalHost(h)
	if !ok {
		return false
	}
	if portsOK(a.hosts[name], port) {
		return true
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' && portsOK(a.wildcards[name[i+1:]], port) {
			return true
		}
	}
	return false
}

func portOK(allowed, port uint16) bool { return allowed == 0 || allowed == port }

func portsOK(allowed []uint16, port uint16) bool {
	for _, p := range allowed {
		if portOK(p, port) {
			return true
		}
	}
	return false
}
