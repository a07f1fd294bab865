package tmpl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// KVPair is one key and its value, as returned by get and gets. Key is
// relative to the resource's prefix, with a leading slash.
type KVPair struct {
	Key   string
	Value string
}

// snapshot is the key space a template sees: every key read for a resource
// at one etcd revision, with the prefix stripped.
type snapshot struct {
	rev  int64
	kv   map[string]string
	keys []string // sorted
}

func newSnapshot(rev int64, kv map[string]string) *snapshot {
	s := &snapshot{rev: rev, kv: kv}
	for k := range kv {
		s.keys = append(s.keys, k)
	}
	sort.Strings(s.keys)
	return s
}

func cleanKey(k string) string { return path.Join("/", k) }

func (s *snapshot) getv(key string, def ...string) (string, error) {
	if len(def) > 1 {
		return "", fmt.Errorf("getv: at most one default, got %d", len(def))
	}
	if v, ok := s.kv[cleanKey(key)]; ok {
		return v, nil
	}
	if len(def) == 1 {
		return def[0], nil
	}
	return "", fmt.Errorf("getv: key does not exist: %s", cleanKey(key))
}

func (s *snapshot) get(key string) (KVPair, error) {
	k := cleanKey(key)
	if v, ok := s.kv[k]; ok {
		return KVPair{Key: k, Value: v}, nil
	}
	return KVPair{}, fmt.Errorf("get: key does not exist: %s", k)
}

func (s *snapshot) exists(key string) bool {
	_, ok := s.kv[cleanKey(key)]
	return ok
}

func (s *snapshot) gets(pattern string) ([]KVPair, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("gets: bad pattern %q: %w", pattern, err)
	}
	out := []KVPair{}
	for _, k := range s.keys {
		if ok, _ := path.Match(pattern, k); ok {
			out = append(out, KVPair{Key: k, Value: s.kv[k]})
		}
	}
	return out, nil
}

func (s *snapshot) getvs(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("getvs: bad pattern %q: %w", pattern, err)
	}
	kvs, _ := s.gets(pattern)
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Value)
	}
	sort.Strings(out)
	return out, nil
}

// children lists the distinct names directly below dir. With dirsOnly, only
// names that have keys below them.
func (s *snapshot) children(dir string, dirsOnly bool) []string {
	d := cleanKey(dir)
	pre := d + "/"
	if d == "/" {
		pre = "/"
	}
	seen := map[string]bool{}
	out := []string{}
	for _, k := range s.keys {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		name, _, isDir := strings.Cut(rest, "/")
		if name == "" || dirsOnly && !isDir || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// funcMap builds the template functions for one render: the key functions
// read snap; getenv reads env (KEY=VALUE entries).
func funcMap(ctx context.Context, snap *snapshot, env []string) template.FuncMap {
	envMap := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			envMap[k] = v
		}
	}
	resolver := net.DefaultResolver
	lookup := func(host string) ([]net.IP, error) {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		addrs, err := resolver.LookupIPAddr(lctx, host)
		if err != nil {
			return nil, err
		}
		ips := make([]net.IP, 0, len(addrs))
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
		return ips, nil
	}
	ipStrings := func(host string, keep func(net.IP) bool) ([]string, error) {
		ips, err := lookup(host)
		if err != nil {
			return nil, fmt.Errorf("lookupIP %s: %w", host, err)
		}
		out := []string{}
		for _, ip := range ips {
			if keep(ip) {
				out = append(out, ip.String())
			}
		}
		sort.Strings(out)
		return out, nil
	}
	return template.FuncMap{
		// Key space.
		"getv":   snap.getv,
		"gets":   snap.gets,
		"getvs":  snap.getvs,
		"get":    snap.get,
		"exists": snap.exists,
		"ls":     func(dir string) []string { return snap.children(dir, false) },
		"lsdir":  func(dir string) []string { return snap.children(dir, true) },

		// Paths and strings.
		"base":       path.Base,
		"dir":        path.Dir,
		"split":      strings.Split,
		"join":       func(a []string, sep string) string { return strings.Join(a, sep) },
		"toUpper":    strings.ToUpper,
		"toLower":    strings.ToLower,
		"contains":   strings.Contains,
		"replace":    strings.Replace,
		"trimSuffix": strings.TrimSuffix,
		"datetime":   time.Now,
		"json": func(s string) (map[string]any, error) {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				return nil, fmt.Errorf("json: %w", err)
			}
			return m, nil
		},
		"jsonArray": func(s string) ([]any, error) {
			var a []any
			if err := json.Unmarshal([]byte(s), &a); err != nil {
				return nil, fmt.Errorf("jsonArray: %w", err)
			}
			return a, nil
		},
		"map": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("map: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("map: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"getenv": func(key string, def ...string) string {
			if v, ok := envMap[key]; ok && v != "" {
				return v
			}
			if len(def) > 0 {
				return def[0]
			}
			return ""
		},
		"base64Encode": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64Decode": func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", fmt.Errorf("base64Decode: %w", err)
			}
			return string(b), nil
		},
		"parseBool": strconv.ParseBool,
		"atoi":      strconv.Atoi,

		// Arithmetic on ints.
		"add": func(a, b int) int { return a + b },
		"sub": func(a, b int) int { return a - b },
		"mul": func(a, b int) int { return a * b },
		"div": func(a, b int) (int, error) {
			if b == 0 {
				return 0, errors.New("div: division by zero")
			}
			return a / b, nil
		},
		"mod": func(a, b int) (int, error) {
			if b == 0 {
				return 0, errors.New("mod: division by zero")
			}
			return a % b, nil
		},
		"seq": func(first, last int) ([]int, error) {
			if last-first > 1_000_000 {
				return nil, errors.New("seq: range too large")
			}
			out := []int{}
			for i := first; i <= last; i++ {
				out = append(out, i)
			}
			return out, nil
		},

		// Slices.
		"reverse":        reverse,
		"sortByLength":   sortByLength,
		"sortKVByLength": sortKVByLength,

		// Host.
		"lookupIP": func(host string) ([]string, error) {
			return ipStrings(host, func(net.IP) bool { return true })
		},
		"lookupIPV4": func(host string) ([]string, error) {
			return ipStrings(host, func(ip net.IP) bool { return ip.To4() != nil })
		},
		"lookupIPV6": func(host string) ([]string, error) {
			return ipStrings(host, func(ip net.IP) bool { return ip.To4() == nil })
		},
		"lookupSRV": func(service, proto, name string) ([]*net.SRV, error) {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, srvs, err := resolver.LookupSRV(lctx, service, proto, name)
			if err != nil {
				return nil, fmt.Errorf("lookupSRV: %w", err)
			}
			sort.Slice(srvs, func(i, j int) bool {
				a, b := srvs[i], srvs[j]
				if a.Target != b.Target {
					return a.Target < b.Target
				}
				return a.Port < b.Port
			})
			return srvs, nil
		},
		"fileExists": func(p string) bool {
			_, err := os.Stat(p)
			return err == nil
		},
	}
}

// reverse returns a reversed copy of any slice (or array).
func reverse(v any) (any, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("reverse: want a slice, got %T", v)
	}
	n := rv.Len()
	out := reflect.MakeSlice(reflect.SliceOf(rv.Type().Elem()), n, n)
	for i := 0; i < n; i++ {
		out.Index(i).Set(rv.Index(n - 1 - i))
	}
	return out.Interface(), nil
}

// sortByLength returns a copy of a sorted by length (shortest first), ties in
// lexical order.
func sortByLength(a []string) []string {
	out := append([]string(nil), a...)
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) < len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// sortKVByLength returns a copy of a sorted by key length (shortest first),
// ties in lexical key order.
func sortKVByLength(a []KVPair) []KVPair {
	out := append([]KVPair(nil), a...)
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i].Key) != len(out[j].Key) {
			return len(out[i].Key) < len(out[j].Key)
		}
		return out[i].Key < out[j].Key
	})
	return out
}
