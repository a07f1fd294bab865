package config

import (
	"errors"
	"github.com/fleetd/fleet/internal/fleet"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", map[string]string{}, ""},
		{"region=us-east", map[string]string{"region": "us-east"}, ""},
		{"a=1,b=2", map[string]string{"a": "1", "b": "2"}, ""},
		{`"a=1,b=2"`, map[string]string{"a": "1", "b": "2"}, ""},
		{`'a=1,b=2'`, map[string]string{"a": "1", "b": "2"}, ""},
		{" a = 1 ,\tb\t=\t2 ", map[string]string{"a": "1", "b": "2"}, ""},
		{"a=1,a=2", map[string]string{"a": "2"}, ""},
		{"a=1,,b=2,", map[string]string{"a": "1", "b": "2"}, ""},
		{"a=", map[string]string{"a": ""}, ""},
		{"a=b=c", map[string]string{"a": "b=c"}, ""},
		{`"a=1'`, map[string]string{`"a`: `1'`}, ""},
		{"a=1,bogus", nil, `malformed metadata pair "bogus"`},
		{"=1", nil, `malformed metadata pair "=1": empty key`},
		{"a=1, =2", nil, `"=2"`},
	}
	for _, tt := range tests {
		got, err := ParseMetadata(tt.in)
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil {
			t.Errorf("ParseMetadata(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseMetadata(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"[]", nil, ""},
		{" [ ] ", nil, ""},
		{"a", []string{"a"}, ""},
		{"a,b", []string{"a", "b"}, ""},
		{" a , b ", []string{"a", "b"}, ""},
		{`["a","b"]`, []string{"a", "b"}, ""},
		{`[ "a" , 'b' ]`, []string{"a", "b"}, ""},
		{`[a,b]`, []string{"a", "b"}, ""},
		{`"a,b"`, []string{"a", "b"}, ""},
		{`"a","b"`, []string{"a", "b"}, ""},
		{`["a"`, nil, "does not end with ']'"},
		{"a,,b", nil, "list element 2 is empty"},
		{"a,", nil, "list element 2 is empty"},
	}
	for _, tt := range tests {
		got, err := parseList(tt.in)
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil {
			t.Errorf("parseList(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"1s", time.Second, ""},
		{"1.0", time.Second, ""},
		{"2", 2 * time.Second, ""},
		{"0.5", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{`"30s"`, 30 * time.Second, ""},
		{"0", 0, "must be positive"},
		{"0s", 0, "must be positive"},
		{"-1", 0, "must be positive"},
		{"-1s", 0, "must be positive"},
		{"abc", 0, `invalid duration "abc"`},
		{"", 0, "empty duration"},
		{"NaN", 0, "invalid duration"},
		{"Inf", 0, "invalid duration"},
		{"1e300", 0, "invalid duration"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.err != "" {
			wantErr(t, err, tt.err)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"268435456", 256 << 20, false},
		{"256M", 256 << 20, false},
		{"256m", 256 << 20, false},
		{"256MB", 256 << 20, false},
		{"256MiB", 256 << 20, false},
		{`"1G"`, 1 << 30, false},
		{"2 G", 2 << 30, false},
		{"512K", 512 << 10, false},
		{"1T", 1 << 40, false},
		{"100B", 100, false},
		{"", 0, true},
		{"M", 0, true},
		{"1.5G", 0, true},
		{"1iB", 0, true},
		{"1X", 0, true},
		{"-5", 0, true},
		{"99999999999T", 0, true},
	} {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for n, want := range map[int64]string{0: "0", 256 << 20: "256M", 1 << 30: "1G", 1536 << 20: "1536M", 1000: "1000", 3 << 40: "3T"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestValueErrors(t *testing.T) {
	// Each invalid value, given by flag, env and file, yields an error
	// naming the key and the source.
	tests := []struct {
		key, val, msg string
	}{
		{"agent_ttl", "500ms", "too short: minimum 1s"},
		{"agent_ttl", "0", "must be positive"},
		{"agent_ttl", "soon", `invalid duration "soon"`},
		{"etcd_request_timeout", "-2", "must be positive"},
		{"engine_reconcile_interval", "0s", "must be positive"},
		{"token_limit", "0", "out of range 1..65535"},
		{"token_limit", "65536", "out of range 1..65535"},
		{"token_limit", "ten", `invalid integer "ten"`},
		{"verbosity", "-1", "out of range"},
		{"disable_engine", "maybe", `invalid boolean "maybe"`},
		{"etcd_servers", "ftp://a:21", "scheme must be http or https"},
		{"etcd_servers", "127.0.0.1:2379", `invalid URL "127.0.0.1:2379": want http(s)://host:port`},
		{"etcd_servers", "http://", "no host"},
		{"etcd_servers", "https://a:2379,,http://b", "list element 2 is empty"},
		{"etcd_listen_client", "http://127.0.0.1", "a port is required"},
		{"etcd_listen_peer", "unix:///x", "scheme must be http or https"},
		{"etcd_listen_peer", "[]", "at least one URL"},
		{"etcd_initial_cluster", "n1", `malformed member "n1"`},
		{"etcd_initial_cluster", "n1=ftp://x:1", "scheme must be http or https"},
		{"etcd_initial_cluster_state", "old", `invalid state "old"`},
		{"etcd_name", "a b", "invalid member name"},
		{"etcd_key_prefix", "fleet", "must start with '/'"},
		{"api_addr", "localhost", "want host:port or unix:///absolute/path"},
		{"api_addr", "unix://relative.sock", "unix:///absolute/path"},
		{"api_addr", "http://127.0.0.1:80", "want host:port"},
		{"api_addr", "127.0.0.1:99999", "invalid port"},
		{"api_addr", "[]", "at least one address"},
		{"machine_id", "../etc", "only letters and digits"},
		{"machine_id", "ab/cd", "only letters and digits"},
		{"public_ip", "1.2.3", `invalid IP address "1.2.3"`},
		{"metadata", "a=1,b", `malformed metadata pair "b"`},
		{"log_format", "xml", `invalid log format "xml"`},
		{"data_dir", `""`, "must not be empty"},
		{"etcd_min_free_space", "32M", "32M is too small: minimum 64M (or 0 to disable)"},
		{"etcd_min_free_space", "lots", `invalid size "lots"`},
		{"etcd_min_free_space", "1P", `invalid size "1P"`},
		{"etcd_min_free_space", "-1G", `invalid size "-1G"`},
	}
	for _, tt := range tests {
		flagName := "--" + (&keyDef{key: tt.key}).flagName()
		envName := (&keyDef{key: tt.key}).envName()
		t.Run(tt.key+"/"+tt.val, func(t *testing.T) {
			_, err := load(t, []string{flagName + "=" + tt.val}, nil, "")
			wantErr(t, err, "flag "+flagName+": "+tt.key+": ", tt.msg)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.key || ce.Source != "flag "+flagName {
				t.Errorf("error %#v is not an *Error for %s", err, tt.key)
			}
			_, err = load(t, nil, []string{envName + "=" + tt.val}, "")
			wantErr(t, err, "env "+envName+": "+tt.key+": ", tt.msg)
			_, err = load(t, nil, nil, "# comment\n\n"+tt.key+"="+tt.val+"\n")
			wantErr(t, err, "/f.conf:3: "+tt.key+": ", tt.msg)
		})
	}
}

func TestMultipleErrorsReported(t *testing.T) {
	_, err := load(t, []string{"--token-limit=0"}, []string{"FLEET_AGENT_TTL=x"}, "bogus_key=1\nlog_format=xml\n")
	wantErr(t, err, "flag --token-limit", "env FLEET_AGENT_TTL", "/f.conf:1: bogus_key: unknown key", "/f.conf:2: log_format")
}

func TestEtcdNameInInitialCluster(t *testing.T) {
	_, err := load(t, []string{"--etcd-name=n3", "--etcd-initial-cluster=n1=https://a:2380,n2=https://b:2380"}, nil, "")
	wantErr(t, err, "flag --etcd-name: etcd_name:", `"n3" is not in etcd_initial_cluster`)
	c := mustLoad(t, []string{"--etcd-name=n2", "--etcd-initial-cluster=n1=https://a:2380,n2=https://b:2380"}, nil, "")
	if c.EtcdInitialCluster != "n1=https://a:2380,n2=https://b:2380" {
		t.Errorf("initial cluster %q", c.EtcdInitialCluster)
	}
}

func TestAPIAddrForms(t *testing.T) {
	for _, a := range []string{"127.0.0.1:49153", ":49153", "[::1]:49153", "localhost:0", "unix:///var/run/fleet.sock"} {
		if err := checkAPIAddr(a); err != nil {
			t.Errorf("checkAPIAddr(%q): %v", a, err)
		}
	}
}

func TestParseCapacity(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    fleet.Resources
		wantErr string
	}{
		{"", fleet.Resources{}, ""},
		{"cpu=4,memory=8G", fleet.Resources{CPUMilli: 4000, MemoryBytes: 8 << 30}, ""},
		{" memory=512M , cpu=0.5 ", fleet.Resources{CPUMilli: 500, MemoryBytes: 512 << 20}, ""},
		{"cpu=250%", fleet.Resources{CPUMilli: 2500}, ""},
		{"cpu=0", fleet.Resources{}, "must be more than 0"},
		{"memory=-1G", fleet.Resources{}, "invalid capacity memory=-1G"},
		{"memory=infinity", fleet.Resources{}, "must be a size"},
		{"memory=8X", fleet.Resources{}, "invalid capacity memory=8X"},
		{"gpu=1", fleet.Resources{}, `unknown capacity "gpu"`},
		{"cpu", fleet.Resources{}, "malformed capacity"},
	} {
		got, err := ParseCapacity(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseCapacity(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCapacity(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParseCapacity(RenderCapacity(got)); err != nil || back != got {
			t.Errorf("render round trip of %+v: %+v, %v", got, back, err)
		}
	}
}
