package auth

import (
	"net/netip"
	"strings"
)

// HostAllowlist is the set of Host header values fleetd answers over TCP:
// the defence against DNS rebinding, where a web page whose name now
// resolves to 127.0.0.1 (or to this machine) talks to fleetd from the
// user's browser as if it were same-origin. Such a request carries the
// attacker's name in Host, which is not on the list.
//
// Loopback names and addresses (localhost, 127.0.0.0/8, ::1) are always
// allowed; the zero value allows only them.
type HostAllowlist struct {
	names map[string]bool
	ips   map[netip.Addr]bool
}

// NewHostAllowlist allows names (host names, case-insensitive, a trailing
// dot ignored; IP literals are accepted too) and ips besides loopback.
func NewHostAllowlist(names []string, ips []netip.Addr) HostAllowlist {
	h := HostAllowlist{names: map[string]bool{}, ips: map[netip.Addr]bool{}}
	for _, n := range names {
		h.addName(n)
	}
	for _, ip := range ips {
		if ip.IsValid() {
			h.ips[ip.Unmap().WithZone("")] = true
		}
	}
	return h
}

func (h HostAllowlist) addName(n string) {
	n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
	if n == "" {
		return
	}
	if ip, err := netip.ParseAddr(strings.Trim(n, "[]")); err == nil {
		h.ips[ip.Unmap().WithZone("")] = true
		return
	}
	h.names[n] = true
}

// Allowed reports whether a Host header value ("name", "name:port",
// "1.2.3.4:80", "[::1]:49153", "[::1]") names this fleetd.
func (h HostAllowlist) Allowed(host string) bool {
	name, ok := SplitHost(host)
	if !ok {
		return false
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		ip = ip.Unmap().WithZone("")
		return ip.IsLoopback() || h.ips[ip]
	}
	// Not *.localhost: browsers that do not pin those names to loopback
	// would let an attacker's DNS answer for them.
	return name == "localhost" || h.names[name]
}

// SplitHost returns the host part of a Host header value, lower case,
// without brackets, port or trailing dot; false if it is malformed (empty,
// a bad port, unbalanced brackets, characters no host name has).
func SplitHost(host string) (string, bool) {
	host = strings.TrimSpace(host)
	switch {
	case strings.HasPrefix(host, "["):
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		if rest := host[end+1:]; rest != "" {
			if p, ok := strings.CutPrefix(rest, ":"); !ok || !isPort(p) {
				return "", false
			}
		}
		return ipv6(host[1:end])
	case strings.Count(host, ":") > 1:
		// A bare IPv6 address: no brackets, so no port.
		return ipv6(host)
	case strings.Contains(host, ":"):
		name, port, _ := strings.Cut(host, ":")
		if !isPort(port) {
			return "", false
		}
		host = name
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
	}) {
		return "", false
	}
	return name, true
}

func ipv6(s string) (string, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is6() {
		return "", false
	}
	return strings.ToLower(s), true
}

// isPort reports whether p is a decimal port number.
func isPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
