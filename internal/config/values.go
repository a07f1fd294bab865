package config

import (
	"errors"
	"fmt"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// unquote strips one pair of matching quotes (" or ') around s.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

func parseString(raw string) string { return unquote(strings.TrimSpace(raw)) }

// parseList parses a comma-separated list, optionally in brackets with quoted
// elements. An empty list is nil.
func parseList(raw string) ([]string, error) {
	s := strings.TrimSpace(raw)
	if len(s) >= 2 && s[0] != '[' && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] &&
		!strings.ContainsRune(s[1:len(s)-1], rune(s[0])) {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") || len(s) < 2 {
			return nil, errors.New("list starts with '[' but does not end with ']'")
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return nil, nil
	}
	var out []string
	for i, e := range strings.Split(s, ",") {
		e = unquote(strings.TrimSpace(e))
		if e == "" {
			return nil, fmt.Errorf("list element %d is empty", i+1)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseDuration accepts a Go duration ("1.5s") or a number of seconds ("2.0").
// The result must be positive.
func parseDuration(raw string) (time.Duration, error) {
	s := parseString(raw)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f*float64(time.Second) >= math.MaxInt64 || f*float64(time.Second) <= math.MinInt64 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want a Go duration (\"10s\") or seconds (\"2.0\")", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

func parseInt(raw string) (int, error) {
	s := parseString(raw)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	return n, nil
}

// parseSize parses a number of bytes: digits, optionally followed by a
// binary unit K, M, G or T (KB, KiB, ... alike; case-insensitive).
func parseSize(raw string) (int64, error) {
	s := parseString(raw)
	num := strings.TrimRight(s, "KMGTBkmgtbIi ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	shift := 0
	switch strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I") {
	case "":
		if unit != "" && unit != "B" {
			return 0, fmt.Errorf("invalid size %q: want bytes or a number with K, M, G or T", s)
		}
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	default:
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with K, M, G or T", s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with K, M, G or T", s)
	}
	return n << shift, nil
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func parseBool(raw string) (bool, error) {
	s := parseString(raw)
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("invalid boolean %q: want true or false", s)
	}
	return b, nil
}

// ParseMetadata parses fleet's metadata syntax "k=v,k=v". One pair of quotes
// around the whole string is allowed, white space around '=' and ',' is
// trimmed, empty pairs are skipped and the last duplicate key wins. A pair
// without '=' or with an empty key is an error naming the pair. The result is
// never nil.
func ParseMetadata(raw string) (map[string]string, error) {
	s := unquote(strings.TrimSpace(raw))
	md := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		p := strings.TrimSpace(pair)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("malformed metadata pair %q: want key=value", p)
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("malformed metadata pair %q: empty key", p)
		}
		md[k] = strings.TrimSpace(v)
	}
	return md, nil
}

// checkURL validates an etcd URL: http or https, with a host; needPort also
// requires an explicit port (listen URLs).
func checkURL(s string, needPort bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: want http(s)://host:port", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("invalid URL %q: user info, query and fragment are not allowed", s)
	}
	if needPort {
		if u.Port() == "" {
			return fmt.Errorf("invalid URL %q: a port is required", s)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("invalid URL %q: a path is not allowed", s)
		}
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("invalid URL %q: %v", s, err)
		}
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 || strings.HasPrefix(p, "+") {
		return fmt.Errorf("invalid port %q", p)
	}
	return nil
}

func checkURLs(list []string, needPort bool) error {
	for _, s := range list {
		if err := checkURL(s, needPort); err != nil {
			return err
		}
	}
	return nil
}

// checkAPIAddr validates "host:port" or "unix:///absolute/path".
func checkAPIAddr(s string) error {
	if path, ok := strings.CutPrefix(s, "unix://"); ok {
		if !strings.HasPrefix(path, "/") || len(path) < 2 {
			return fmt.Errorf("invalid address %q: want unix:///absolute/path", s)
		}
		return nil
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf("invalid address %q: want host:port or unix:///absolute/path", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port or unix:///absolute/path", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("invalid address %q: bad host", s)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("invalid address %q: %v", s, err)
	}
	return nil
}

// checkListenAddr validates a TCP listen address "host:port" (an empty
// host listens on every address).
func checkListenAddr(s string) error {
	if strings.Contains(s, "://") {
		return fmt.Errorf("invalid address %q: want host:port (no scheme)", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("invalid address %q: bad host", s)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("invalid address %q: %v", s, err)
	}
	return nil
}

// isLoopbackListenAddr reports whether a "host:port" only accepts loopback
// callers (auth.IsLoopbackListenAddr's rule: localhost or a loopback IP).
func isLoopbackListenAddr(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkMachineID accepts 1..128 ASCII letters and digits.
func checkMachineID(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("invalid machine ID %q: want 1 to 128 letters and digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("invalid machine ID %q: only letters and digits are allowed", s)
		}
	}
	return nil
}

// checkMemberName accepts names usable in etcd_initial_cluster.
func checkMemberName(s string) error {
	if strings.ContainsAny(s, "=, \t\r\n") {
		return fmt.Errorf("invalid member name %q: must not contain '=', ',' or white space", s)
	}
	return nil
}

// parseInitialCluster validates "name=peerURL,..." and returns the names.
func parseInitialCluster(s string) (map[string]bool, error) {
	names := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		name, u, ok := strings.Cut(p, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("malformed member %q: want name=peerURL", p)
		}
		if err := checkMemberName(name); err != nil {
			return nil, err
		}
		if err := checkURL(u, true); err != nil {
			return nil, fmt.Errorf("member %q: %v", name, err)
		}
		names[name] = true
	}
	return names, nil
}

// ParseCapacity parses capacity: "cpu=N,memory=SIZE" in any order, each
// optional (cpu as in [X-Fleet] CPU=: "4", "0.5", "250%"; memory as in
// Memory=: "8G", "512M"). "" gives zero (everything detected).
func ParseCapacity(raw string) (fleet.Resources, error) {
	var r fleet.Resources
	s := unquote(strings.TrimSpace(raw))
	for _, pair := range strings.Split(s, ",") {
		p := strings.TrimSpace(pair)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return r, fmt.Errorf("malformed capacity %q: want cpu=N or memory=SIZE", p)
		}
		switch k, v = strings.TrimSpace(k), strings.TrimSpace(v); k {
		case "cpu":
			milli, err := unitfile.ParseCPU(v)
			if err != nil {
				return r, fmt.Errorf("invalid capacity cpu=%s: %w", v, err)
			}
			if milli <= 0 {
				return r, fmt.Errorf("invalid capacity cpu=%s: must be more than 0", v)
			}
			r.CPUMilli = milli
		case "memory":
			b, inf, err := unitfile.ParseSize(v)
			if err != nil {
				return r, fmt.Errorf("invalid capacity memory=%s: %w", v, err)
			}
			if inf || b <= 0 {
				return r, fmt.Errorf("invalid capacity memory=%s: must be a size such as 8G", v)
			}
			r.MemoryBytes = b
		default:
			return r, fmt.Errorf("unknown capacity %q: expect cpu or memory", k)
		}
	}
	return r, nil
}

// RenderCapacity is ParseCapacity's inverse ("" for zero).
func RenderCapacity(r fleet.Resources) string {
	var parts []string
	if r.CPUMilli > 0 {
		parts = append(parts, "cpu="+strconv.FormatFloat(float64(r.CPUMilli)/1000, 'f', -1, 64))
	}
	if r.MemoryBytes > 0 {
		parts = append(parts, "memory="+strconv.FormatInt(r.MemoryBytes, 10))
	}
	return strings.Join(parts, ",")
}
