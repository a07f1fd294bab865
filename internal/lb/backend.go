package lb

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Backend is one endpoint of a service: ID is its registration key below
// the service prefix (registrator's "<host>:<unit-or-container>:<port>"),
// Addr the "ip:port" it serves on.
type Backend struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// ParseEndpoint validates an endpoint value as registered under
// /services/<name>/ and returns it normalised ("host:port", IPv6 hosts in
// brackets). Surrounding white space is ignored; anything else that is not a
// plain host:port with a numeric port in 1-65535 is an error.
func ParseEndpoint(value string) (string, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return "", errors.New("empty endpoint")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("endpoint %q is not host:port: %w", v, err)
	}
	if host == "" {
		return "", fmt.Errorf("endpoint %q has no host", v)
	}
	if strings.ContainsAny(host, " \t\r\n/@?#%[]") {
		return "", fmt.Errorf("endpoint %q has an invalid host", v)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("endpoint %q has an invalid port %q (want 1-65535)", v, port)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("endpoint %q has an invalid IPv6 host", v)
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}
