package config

import (
	"reflect"
	"testing"
	"time"
)

func TestFileSyntax(t *testing.T) {
	tests := []struct {
		name string
		file string
		err  []string
		chk  func(t *testing.T, c Config)
	}{
		{name: "comments and blanks", file: "# c\n; c\n\n   \n  # indented\nagent_ttl=20s\n",
			chk: func(t *testing.T, c Config) {
				if c.AgentTTL != 20*time.Second {
					t.Errorf("agent_ttl %v", c.AgentTTL)
				}
			}},
		{name: "spaces around =", file: "  agent_ttl  =  20s  \r\n",
			chk: func(t *testing.T, c Config) {
				if c.AgentTTL != 20*time.Second {
					t.Errorf("agent_ttl %v", c.AgentTTL)
				}
			}},
		{name: "quoted values", file: "metadata=\"region=us-west,disk=ssd\"\npublic_ip=\"\"\netcd_key_prefix='/q/'\nagent_ttl=\"15s\"\n",
			chk: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.Metadata, map[string]string{"region": "us-west", "disk": "ssd"}) || c.PublicIP != "" ||
					c.EtcdKeyPrefix != "/q/" || c.AgentTTL != 15*time.Second {
					t.Errorf("%+v", c)
				}
			}},
		{name: "json list", file: `etcd_servers=["https://a:2379","https://b:2379"]`,
			chk: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.EtcdServers, []string{"https://a:2379", "https://b:2379"}) {
					t.Errorf("%q", c.EtcdServers)
				}
			}},
		{name: "comma list", file: `etcd_servers=https://a:2379, https://b:2379`,
			chk: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c.EtcdServers, []string{"https://a:2379", "https://b:2379"}) {
					t.Errorf("%q", c.EtcdServers)
				}
			}},
		{name: "empty list means embedded", file: "etcd_servers=[]\n",
			chk: func(t *testing.T, c Config) {
				if !c.EmbeddedEtcd() {
					t.Error("not embedded")
				}
			}},
		{name: "float seconds as fleet wrote them", file: "etcd_request_timeout=1.0\nengine_reconcile_interval=2.5\n",
			chk: func(t *testing.T, c Config) {
				if c.EtcdRequestTimeout != time.Second || c.EngineReconcileInterval != 2500*time.Millisecond {
					t.Errorf("%v %v", c.EtcdRequestTimeout, c.EngineReconcileInterval)
				}
			}},
		{name: "BOM", file: "\uFEFFtoken_limit=5\n",
			chk: func(t *testing.T, c Config) {
				if c.TokenLimit != 5 {
					t.Errorf("token_limit %d", c.TokenLimit)
				}
			}},
		{name: "section", file: "agent_ttl=20s\n[global]\n", err: []string{"/f.conf:2:", "section [global] is not supported"}},
		{name: "no equals", file: "\n\nagent_ttl\n", err: []string{"/f.conf:3:", `line "agent_ttl" is not key=value`}},
		{name: "unknown key", file: "etcd_server=https://a:2379\n", err: []string{"/f.conf:1: etcd_server: unknown key"}},
		{name: "unknown key with dashes", file: "agent-ttl=1s\n", err: []string{"agent-ttl: unknown key (did you mean agent_ttl?)"}},
		{name: "empty key", file: "=1\n", err: []string{`/f.conf:1: line "=1" has no key`}},
		{name: "bad list", file: `etcd_servers=["https://a:2379"`, err: []string{"/f.conf:1: etcd_servers:", "']'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, nil, nil, tt.file)
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.chk(t, c)
		})
	}
}

func TestRenderRoundTrip(t *testing.T) {
	c := mustLoad(t, []string{
		"--etcd-servers=https://a:2379,https://b:2379", "--metadata=\"x=1\",y=\" z\"", "--machine-id=abc",
		"--engine-reconcile-interval=0.25", "--etcd-password=\"'p w'\"", "--etcd-initial-cluster=abc=https://a:2380",
	}, nil, "")
	c2 := mustLoad(t, nil, nil, string(c.Render()))
	c.Warnings, c2.Warnings, c2.ConfigFile = nil, nil, ""
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("render:\n%s\ngot  %+v\nwant %+v", c.Render(), c2, c)
	}
}

func FuzzFile(f *testing.F) {
	f.Add("agent_ttl=20s\nmetadata=\"a=1,b=2\"\n")
	f.Add(`etcd_servers=["https://a:2379","https://b:2379"]` + "\n# c\n; c\n")
	f.Add("etcd_request_timeout=1.0\nengine_reconcile_interval=2.5\ntoken_limit=5\ndisable_engine=true\n")
	f.Add("[section]\nfoo\n")
	f.Add("machine_id=abc\netcd_initial_cluster=abc=https://a:2380\netcd_name=abc\napi_addr=:1,unix:///s\n")
	f.Add("metadata='\"a=b\"'\npublic_ip=::1\nlog_format=json\nverify_units=1\n")
	f.Fuzz(func(t *testing.T, file string) {
		ffs := newFS(map[string]string{"/f.conf": file})
		c, err := Load([]string{"--config=/f.conf"}, nil, ffs.readFile, ffs.stat)
		if err != nil {
			return
		}
		out := string(c.Render())
		ffs.files["/f.conf"] = out
		c2, err := Load([]string{"--config=/f.conf"}, nil, ffs.readFile, ffs.stat)
		if err != nil {
			t.Fatalf("re-parse of\n%s\nfailed: %v", out, err)
		}
		c.Warnings, c2.Warnings = nil, nil
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip of\n%q\nvia\n%s\ngot  %+v\nwant %+v", file, out, c2, c)
		}
	})
}
