package config

import (
	"errors"
	"flag"
	"github.com/fleetd/fleet/internal/fleet"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load(nil, nil, newFS(nil).readFile, newFS(nil).stat)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.UnitsDirectory = "/var/lib/fleet/units"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if !c.EmbeddedEtcd() {
		t.Error("default is not embedded etcd")
	}
	if c.AgentTTL != 9*time.Second || c.EtcdRequestTimeout != 2*time.Second || c.EngineReconcileInterval != 2*time.Second {
		t.Errorf("durations %v %v %v", c.AgentTTL, c.EtcdRequestTimeout, c.EngineReconcileInterval)
	}
	if c.EtcdKeyPrefix != "/_coreos.com/fleet/" || c.TokenLimit != 100 || c.LogFormat != "text" {
		t.Errorf("defaults %+v", c)
	}
	if !reflect.DeepEqual(c.APIAddr, []string{"127.0.0.1:49153", "unix:///var/run/fleet.sock"}) {
		t.Errorf("api_addr %q", c.APIAddr)
	}
}

func TestPrecedence(t *testing.T) {
	file := "agent_ttl=20s\nmetadata=a=file\ntoken_limit=3\nlog_format=json\netcd_key_prefix=/file/\n"
	env := []string{"FLEET_AGENT_TTL=30s", "FLEET_METADATA=a=env", "FLEET_TOKEN_LIMIT=4", "PATH=/bin"}
	flags := []string{"--agent-ttl", "40s", "--metadata=a=flag"}
	tests := []struct {
		name  string
		args  []string
		env   []string
		file  string
		ttl   time.Duration
		md    string
		limit int
		logf  string
		pfx   string
	}{
		{"default", nil, nil, "", 9 * time.Second, "", 100, "text", "/_coreos.com/fleet/"},
		{"file", nil, nil, file, 20 * time.Second, "file", 3, "json", "/file/"},
		{"env beats file", nil, env, file, 30 * time.Second, "env", 4, "json", "/file/"},
		{"flag beats env", flags, env, file, 40 * time.Second, "flag", 4, "json", "/file/"},
		{"flag beats default", flags, nil, "", 40 * time.Second, "flag", 100, "text", "/_coreos.com/fleet/"},
		{"env beats default", nil, env, "", 30 * time.Second, "env", 4, "text", "/_coreos.com/fleet/"},
		{"last env entry wins", nil, []string{"FLEET_TOKEN_LIMIT=5", "FLEET_TOKEN_LIMIT=6"}, "", 9 * time.Second, "", 6, "text", "/_coreos.com/fleet/"},
		{"empty env is unset", nil, []string{"FLEET_TOKEN_LIMIT="}, file, 20 * time.Second, "file", 3, "json", "/file/"},
		{"last flag wins", []string{"--token-limit=7", "-token-limit", "8"}, env, file, 30 * time.Second, "env", 8, "json", "/file/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, tt.env, tt.file)
			if c.AgentTTL != tt.ttl {
				t.Errorf("agent_ttl = %v, want %v", c.AgentTTL, tt.ttl)
			}
			if c.Metadata["a"] != tt.md {
				t.Errorf("metadata a = %q, want %q", c.Metadata["a"], tt.md)
			}
			if c.TokenLimit != tt.limit {
				t.Errorf("token_limit = %d, want %d", c.TokenLimit, tt.limit)
			}
			if c.LogFormat != tt.logf {
				t.Errorf("log_format = %q, want %q", c.LogFormat, tt.logf)
			}
			if c.EtcdKeyPrefix != tt.pfx {
				t.Errorf("etcd_key_prefix = %q, want %q", c.EtcdKeyPrefix, tt.pfx)
			}
		})
	}
}

func TestConfigFileSelection(t *testing.T) {
	t.Run("default file used if present", func(t *testing.T) {
		ffs := newFS(map[string]string{DefaultConfigFile: "token_limit=9\n"})
		c, err := Load(nil, nil, ffs.readFile, ffs.stat)
		if err != nil || c.TokenLimit != 9 || c.ConfigFile != DefaultConfigFile {
			t.Fatalf("c=%+v err=%v", c, err)
		}
	})
	t.Run("default file absent is fine", func(t *testing.T) {
		ffs := newFS(nil)
		c, err := Load(nil, nil, ffs.readFile, ffs.stat)
		if err != nil || c.ConfigFile != "" {
			t.Fatalf("c=%+v err=%v", c, err)
		}
	})
	t.Run("--config= reads none", func(t *testing.T) {
		ffs := newFS(map[string]string{DefaultConfigFile: "bogus"})
		c, err := Load([]string{"--config="}, nil, ffs.readFile, ffs.stat)
		if err != nil || c.ConfigFile != "" {
			t.Fatalf("c=%+v err=%v", c, err)
		}
	})
	t.Run("given file missing", func(t *testing.T) {
		ffs := newFS(nil)
		_, err := Load([]string{"--config", "/nope.conf"}, nil, ffs.readFile, ffs.stat)
		wantErr(t, err, "/nope.conf")
		if !errors.Is(err, errNotExist()) {
			t.Errorf("error %v is not ErrNotExist", err)
		}
	})
	t.Run("given file is a directory", func(t *testing.T) {
		ffs := newFS(nil)
		ffs.dirs["/etc/fleet"] = true
		_, err := Load([]string{"--config=/etc/fleet"}, nil, ffs.readFile, ffs.stat)
		wantErr(t, err, "/etc/fleet", "directory")
	})
	t.Run("default path is a directory", func(t *testing.T) {
		ffs := newFS(nil)
		ffs.dirs[DefaultConfigFile] = true
		_, err := Load(nil, nil, ffs.readFile, ffs.stat)
		wantErr(t, err, DefaultConfigFile, "directory")
	})
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		version bool
		err     string
	}{
		{"none", nil, false, ""},
		{"--version", []string{"--version"}, true, ""},
		{"-version", []string{"-version"}, true, ""},
		{"version word", []string{"version"}, true, ""},
		{"flags then version", []string{"--verbosity=1", "version"}, true, ""},
		{"version then flags", []string{"version", "--verbosity=1"}, true, ""},
		{"positional", []string{"start"}, false, `unexpected argument "start"`},
		{"version twice", []string{"version", "version"}, false, `unexpected argument "version"`},
		{"unknown flag", []string{"--bogus"}, false, "flag provided but not defined: -bogus"},
		{"missing flag value", []string{"--agent-ttl"}, false, "flag needs an argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, nil, "")
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Version != tt.version {
				t.Errorf("Version = %v", c.Version)
			}
		})
	}
}

func TestVersionSkipsFile(t *testing.T) {
	ffs := newFS(map[string]string{DefaultConfigFile: "[broken"})
	c, err := Load([]string{"--version"}, []string{"FLEET_AGENT_TTL=x"}, ffs.readFile, ffs.stat)
	if err != nil || !c.Version {
		t.Fatalf("c=%+v err=%v", c, err)
	}
}

func TestHelp(t *testing.T) {
	for _, a := range []string{"-h", "--help"} {
		_, err := load(t, []string{a}, nil, "")
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: err = %v, want flag.ErrHelp", a, err)
		}
	}
}

func TestEveryKeyHasFlagAndEnv(t *testing.T) {
	// Each key set through its flag and through its env var to a
	// non-default valid value.
	vals := map[string]string{
		"etcd_servers":               "http://10.0.0.1:2379,https://10.0.0.2:2379",
		"etcd_key_prefix":            "/x/",
		"etcd_cafile":                "/ca.pem",
		"etcd_certfile":              "/cert.pem",
		"etcd_keyfile":               "/key.pem",
		"etcd_username":              "u",
		"etcd_password":              "p",
		"etcd_request_timeout":       "3s",
		"etcd_listen_client":         "http://0.0.0.0:3379",
		"etcd_listen_peer":           "http://0.0.0.0:3380",
		"etcd_name":                  "n1",
		"etcd_initial_cluster":       "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380",
		"etcd_initial_cluster_state": "existing",
		"etcd_min_free_space":        "1G",
		"etcd_v2_listen":             "10.0.0.1:2001",
		"engine_reconcile_interval":  "1.5",
		"public_ip":                  "10.0.0.1",
		"metadata":                   "region=eu,disk=ssd",
		"capacity":                   "cpu=2,memory=1G",
		"placement_strategy":         "binpack",
		"agent_ttl":                  "5s",
		"token_limit":                "50",
		"disable_engine":             "true",
		"verbosity":                  "2",
		"data_dir":                   "/d",
		"units_directory":            "/u",
		"machine_id":                 "abc123",
		"api_addr":                   ":4000,unix:///tmp/f.sock",
		"log_format":                 "json",
		"stop_units_on_exit":         "true",
		"docker_registration":        "false",
		"api_tls_cert":               "/api.pem",
		"api_tls_key":                "/api-key.pem",
		"api_tls_client_ca":          "/clients.pem",
		"api_tls_ca":                 "/peers.pem",
		"api_tokens_file":            "/tokens",
		"peer_token_file":            "/peer-token",
		"api_insecure":               "true",
		"api_trust_loopback":         "true",
		"api_anonymous_read":         "false",
		"api_allowed_hosts":          "fleet.example.com,10.1.1.1",
		"cluster_token_file":         "/ct",
		"etcd_insecure":              "true",
		"etcd_server_cert":           "/es.pem",
		"etcd_server_key":            "/es-key.pem",
		"etcd_client_ca":             "/ec.pem",
		"etcd_peer_cert":             "/ep.pem",
		"etcd_peer_key":              "/ep-key.pem",
		"etcd_peer_ca":               "/epca.pem",
	}
	want := Config{
		EtcdServers:             []string{"http://10.0.0.1:2379", "https://10.0.0.2:2379"},
		EtcdKeyPrefix:           "/x/",
		EtcdCAFile:              "/ca.pem",
		EtcdCertFile:            "/cert.pem",
		EtcdKeyFile:             "/key.pem",
		EtcdUsername:            "u",
		EtcdPassword:            "p",
		EtcdRequestTimeout:      3 * time.Second,
		EtcdListenClient:        []string{"http://0.0.0.0:3379"},
		EtcdListenPeer:          []string{"http://0.0.0.0:3380"},
		EtcdName:                "n1",
		EtcdInitialCluster:      "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380",
		EtcdInitialClusterState: "existing",
		EtcdMinFreeSpace:        1 << 30,
		EtcdV2Listen:            "10.0.0.1:2001",
		EngineReconcileInterval: 1500 * time.Millisecond,
		PublicIP:                "10.0.0.1",
		Metadata:                map[string]string{"region": "eu", "disk": "ssd"},
		Capacity:                fleet.Resources{CPUMilli: 2000, MemoryBytes: 1 << 30},
		PlacementStrategy:       "binpack",
		AgentTTL:                5 * time.Second,
		TokenLimit:              50,
		DisableEngine:           true,
		StopUnitsOnExit:         true,
		Verbosity:               2,
		DataDir:                 "/d",
		UnitsDirectory:          "/u",
		MachineID:               "abc123",
		APIAddr:                 []string{":4000", "unix:///tmp/f.sock"},
		LogFormat:               "json",
		APITLSCert:              "/api.pem",
		APITLSKey:               "/api-key.pem",
		APITLSClientCA:          "/clients.pem",
		APITLSCA:                "/peers.pem",
		APITokensFile:           "/tokens",
		PeerTokenFile:           "/peer-token",
		APIInsecure:             true,
		APITrustLoopback:        true,
		APIAnonymousRead:        "false",
		APIAllowedHosts:         []string{"fleet.example.com", "10.1.1.1"},
		ClusterTokenFile:        "/ct",
		EtcdInsecure:            true,
		EtcdServerCert:          "/es.pem",
		EtcdServerKey:           "/es-key.pem",
		EtcdClientCA:            "/ec.pem",
		EtcdPeerCert:            "/ep.pem",
		EtcdPeerKey:             "/ep-key.pem",
		EtcdPeerCA:              "/epca.pem",
	}
	defs := keyDefs()
	if len(defs) != len(vals) {
		t.Fatalf("%d keys, %d test values", len(defs), len(vals))
	}
	var args, env []string
	var file strings.Builder
	for _, d := range defs {
		v, ok := vals[d.key]
		if !ok {
			t.Fatalf("no test value for %s", d.key)
		}
		args = append(args, "--"+d.flagName()+"="+v)
		env = append(env, d.envName()+"="+v)
		file.WriteString(d.key + "=" + v + "\n")
	}
	for name, src := range map[string]struct {
		args, env []string
		file      string
	}{"flags": {args: args}, "env": {env: env}, "file": {file: file.String()}} {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, src.args, src.env, src.file)
			c.Warnings, c.ConfigFile = nil, ""
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestDerived(t *testing.T) {
	c := mustLoad(t, []string{"--data-dir=/srv/f1"}, nil, "")
	if c.UnitsDirectory != "/srv/f1/units" {
		t.Errorf("units_directory = %q", c.UnitsDirectory)
	}
	c = mustLoad(t, []string{"--machine-id=0123456789abcdef"}, nil, "")
	if c.EtcdName != "01234567" {
		t.Errorf("etcd_name = %q", c.EtcdName)
	}
	c = mustLoad(t, []string{"--machine-id=0123456789abcdef", "--etcd-name=x"}, nil, "")
	if c.EtcdName != "x" {
		t.Errorf("etcd_name = %q", c.EtcdName)
	}
}

func TestWarnings(t *testing.T) {
	c := mustLoad(t, []string{"--systemd-user", "--etcd-servers=https://e:2379", "--etcd-name=n"},
		[]string{"FLEET_ENABLE_GRPC=true"},
		"verify_units=true\nauthorized_keys_file=/x\ndisable_watches=1\nagent_ttl=20s\nagent_ttl=30s\n")
	all := strings.Join(c.Warnings, "\n")
	for _, w := range []string{
		"/f.conf:1: verify_units is deprecated",
		"/f.conf:2: authorized_keys_file is deprecated",
		"/f.conf:3: disable_watches is deprecated",
		"env FLEET_ENABLE_GRPC: enable_grpc is deprecated",
		"flag --systemd-user: systemd_user is deprecated",
		"/f.conf:5: agent_ttl repeats the key set at /f.conf:4",
		"flag --etcd-name: etcd_name is ignored",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings %q lack %q", c.Warnings, w)
		}
	}
	if c.AgentTTL != 30*time.Second {
		t.Errorf("agent_ttl = %v, want the last duplicate", c.AgentTTL)
	}
}

func TestUnknownEnvIgnored(t *testing.T) {
	mustLoad(t, nil, []string{"FLEET_ENDPOINT=http://x", "FLEET_BOGUS=1", "FLEET", "=x"}, "")
}

func TestUsage(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	out := b.String()
	for _, d := range keyDefs() {
		for _, s := range []string{"--" + d.flagName(), d.key, d.envName(), d.def} {
			if !strings.Contains(out, s) {
				t.Errorf("usage lacks %q", s)
			}
		}
	}
	for _, s := range []string{"--config", "--version", "9s", "/etc/fleet/fleet.conf"} {
		if !strings.Contains(out, s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}
