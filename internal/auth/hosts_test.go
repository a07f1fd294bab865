package auth

import (
	"net/netip"
	"testing"
)

func TestHostAllowlist(t *testing.T) {
	h := NewHostAllowlist(
		[]string{"node1.example.com", "Node1", "fleet.internal.", " ", "[2001:db8::7]", "192.0.2.9"},
		[]netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::ffff:10.0.0.6")},
	)
	for _, tc := range []struct {
		host string
		want bool
	}{
		// Loopback, always.
		{"localhost", true},
		{"LOCALHOST:80", true},
		{"localhost.:49153", true},
		{"app.localhost:8080", false},
		{"127.0.0.1", true},
		{"127.0.0.1:49153", true},
		{"127.1.2.3:1", true},
		{"[::1]:49153", true},
		{"[::1]", true},
		{"::1", true},
		{"[::ffff:127.0.0.1]:80", true},
		// This machine's addresses and names.
		{"10.0.0.5:49153", true},
		{"10.0.0.6", true},
		{"[fe80::1]:49153", true},
		{"[fe80::1%25eth0]:49153", true},
		{"node1.example.com:49153", true},
		{"NODE1.EXAMPLE.COM", true},
		{"node1", true},
		{"fleet.internal", true},
		{"fleet.internal.:443", true},
		{"[2001:db8::7]:1", true},
		{"192.0.2.9:80", true},
		// Anything else.
		{"attacker.example", false},
		{"attacker.example:49153", false},
		{"localhost.attacker.example", false},
		{"node1.example.com.attacker.example", false},
		{"10.0.0.7:49153", false},
		{"[2001:db8::8]:1", false},
		{"0.0.0.0:49153", false},
		{"", false},
		{":49153", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:abc", false},
		{"127.0.0.1:123456", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[::1]:", false},
		{"[localhost]:80", false},
		{"localhost:80:90", false},
		{"local host", false},
		{"localhost/x", false},
		{"localhost@attacker.example", false},
	} {
		if got := h.Allowed(tc.host); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	var zero HostAllowlist
	for host, want := range map[string]bool{"localhost:1": true, "127.0.0.1": true, "[::1]:2": true, "10.0.0.5": false, "node1": false} {
		if got := zero.Allowed(host); got != want {
			t.Errorf("zero value: Allowed(%q) = %v", host, got)
		}
	}
}

func TestSplitHost(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM:80": "example.com", "[::1]:49153": "::1", "[::1]": "::1", "127.0.0.1": "127.0.0.1",
		"LOCALHOST:80": "localhost", "fe80::1": "fe80::1", "a.b.": "a.b",
	} {
		if got, ok := SplitHost(in); !ok || got != want {
			t.Errorf("SplitHost(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}
