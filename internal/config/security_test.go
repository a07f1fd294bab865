package config

import (
	"strings"
	"testing"
)

func TestSecurityDefaults(t *testing.T) {
	c := mustLoad(t, nil, nil, "")
	if c.APITrustLoopback || c.APIInsecure || c.APITokensFile != "" || c.APITLSCert != "" || c.APIAnonymousRead != "auto" || c.EtcdInsecure {
		t.Errorf("defaults: trust_loopback=%v insecure=%v tokens=%q cert=%q anonymous_read=%q etcd_insecure=%v",
			c.APITrustLoopback, c.APIInsecure, c.APITokensFile, c.APITLSCert, c.APIAnonymousRead, c.EtcdInsecure)
	}
	c = mustLoad(t, []string{"--api-trust-loopback=true", "--api-insecure"}, nil, "")
	if !c.APITrustLoopback || !c.APIInsecure {
		t.Errorf("flags: trust_loopback=%v insecure=%v", c.APITrustLoopback, c.APIInsecure)
	}
}

func TestSecurityCrossChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"cert without key", []string{"--api-tls-cert=/c"}, []string{"flag --api-tls-cert: api_tls_cert: needs api_tls_key"}},
		{"key without cert", []string{"--api-tls-key=/k"}, []string{"api_tls_key: needs api_tls_cert"}},
		{"client CA without TLS", []string{"--api-tls-client-ca=/ca"}, []string{"api_tls_client_ca: client certificates need TLS"}},
		{"etcd server cert on http", []string{"--etcd-server-cert=/c", "--etcd-server-key=/k", "--etcd-cafile=/ca"},
			[]string{"etcd_listen_client: URL http://127.0.0.1:2379 must use https (etcd_server_cert is set)"}},
		{"https without etcd cert when insecure", []string{"--etcd-listen-client=https://127.0.0.1:2379", "--etcd-insecure"},
			[]string{"etcd_listen_client: URL https://127.0.0.1:2379 must use http (etcd_insecure=true"}},
		{"plain client URL beyond loopback", []string{"--etcd-listen-client=http://10.0.0.1:2379"},
			[]string{"etcd_listen_client: http://10.0.0.1:2379 is plain HTTP beyond loopback", "use https://10.0.0.1:2379"}},
		{"plain peer URL on all interfaces", []string{"--etcd-listen-peer=http://0.0.0.0:2380"},
			[]string{"etcd_listen_peer: http://0.0.0.0:2380 is plain HTTP beyond loopback", "etcd_peer_cert"}},
		{"plain initial cluster", []string{"--etcd-initial-cluster=a=http://10.0.0.1:2380,b=http://10.0.0.2:2380", "--etcd-name=a"},
			[]string{"etcd_initial_cluster: http://10.0.0.1:2380 is plain HTTP beyond loopback"}},
		{"plain etcd servers beyond loopback", []string{"--etcd-servers=http://10.0.0.1:2379"},
			[]string{"etcd_servers: http://10.0.0.1:2379 is plain HTTP beyond loopback", "cluster_token_file"}},
		{"insecure with a token", []string{"--etcd-insecure", "--cluster-token-file=/t"},
			[]string{"etcd_insecure: turns etcd authentication off"}},
		{"etcd client CA without TLS", []string{"--etcd-client-ca=/ca"}, []string{"etcd_client_ca: client certificates need TLS"}},
		{"etcd server cert without etcd_cafile", []string{"--etcd-server-cert=/c", "--etcd-server-key=/k", "--etcd-listen-client=https://127.0.0.1:2379"},
			[]string{"etcd_server_cert: fleetd's own etcd client must verify it: set etcd_cafile"}},
		{"etcd client CA without own cert", []string{"--etcd-server-cert=/c", "--etcd-server-key=/k", "--etcd-cafile=/ca", "--etcd-client-ca=/ca", "--etcd-listen-client=https://127.0.0.1:2379"},
			[]string{"etcd_client_ca: fleetd's own etcd client needs a certificate"}},
		{"etcd peer cert without key", []string{"--etcd-peer-cert=/c", "--etcd-listen-peer=https://127.0.0.1:2380"}, []string{"etcd_peer_cert: needs etcd_peer_key"}},
		{"etcd peer CA without TLS", []string{"--etcd-peer-ca=/ca"}, []string{"etcd_peer_ca: peer certificates need TLS"}},
		{"peer https without cert when insecure", []string{"--etcd-listen-peer=https://127.0.0.1:2380", "--etcd-insecure"}, []string{"etcd_listen_peer: URL https://127.0.0.1:2380 must use http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, nil, "")
			wantErr(t, err, tc.want...)
		})
	}
}

func TestSecurityValid(t *testing.T) {
	c := mustLoad(t, []string{
		"--api-tls-cert=/c", "--api-tls-key=/k", "--api-tls-client-ca=/ca", "--api-tokens-file=/t",
		"--etcd-server-cert=/es", "--etcd-server-key=/esk", "--etcd-client-ca=/eca",
		"--etcd-cafile=/eca", "--etcd-certfile=/cc", "--etcd-keyfile=/ck",
		"--etcd-listen-client=https://127.0.0.1:2379",
		"--etcd-peer-cert=/ep", "--etcd-peer-key=/epk", "--etcd-peer-ca=/epca",
		"--etcd-listen-peer=https://127.0.0.1:2380",
	}, nil, "")
	if c.EtcdClientCA != "/eca" || c.EtcdPeerCA != "/epca" || c.APITLSClientCA != "/ca" {
		t.Errorf("got %+v", c)
	}
	// https without files: certificates derived from the cluster token;
	// plain HTTP beyond loopback with etcd_insecure.
	mustLoad(t, []string{"--etcd-listen-client=https://10.0.0.1:2379", "--etcd-listen-peer=https://10.0.0.1:2380"}, nil, "")
	mustLoad(t, []string{"--etcd-listen-client=http://10.0.0.1:2379", "--etcd-insecure"}, nil, "")
	mustLoad(t, []string{"--etcd-servers=http://10.0.0.1:2379", "--etcd-insecure"}, nil, "")
	mustLoad(t, []string{"--etcd-servers=https://10.0.0.1:2379,http://127.0.0.1:2379", "--cluster-token-file=/t"}, nil, "")
	// With an external etcd the embedded etcd's keys are ignored, with a
	// warning, and not checked.
	c = mustLoad(t, []string{"--etcd-servers=https://e:2379", "--etcd-server-cert=/es"}, nil, "")
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "etcd_server_cert is ignored") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestSecurityRender(t *testing.T) {
	c := mustLoad(t, []string{"--api-tokens-file=/t", "--api-trust-loopback=false"}, nil, "")
	out := string(c.Render())
	for _, s := range []string{`api_tokens_file="/t"`, "api_trust_loopback=false", "api_insecure=false"} {
		if !strings.Contains(out, s) {
			t.Errorf("render lacks %q", s)
		}
	}
}

func TestEtcdV2Listen(t *testing.T) {
	if c := mustLoad(t, nil, nil, ""); c.EtcdV2Listen != DefaultEtcdV2Listen {
		t.Errorf("default %q", c.EtcdV2Listen)
	}
	for _, v := range []string{"127.0.0.1:2001", "localhost:2001", "[::1]:2001", "10.0.0.1:4001", ":4001", "127.0.0.1:0"} {
		if c := mustLoad(t, []string{"--etcd-v2-listen=" + v}, nil, ""); c.EtcdV2Listen != v {
			t.Errorf("%s: got %q", v, c.EtcdV2Listen)
		}
	}
	// "" disables, from the flag, the environment or the file.
	if c := mustLoad(t, []string{"--etcd-v2-listen="}, nil, ""); c.EtcdV2Listen != "" {
		t.Errorf("flag: got %q", c.EtcdV2Listen)
	}
	// An empty variable is unset (as for every key): "" in quotes disables.
	if c := mustLoad(t, nil, []string{`FLEET_ETCD_V2_LISTEN=""`}, ""); c.EtcdV2Listen != "" {
		t.Errorf("env: got %q", c.EtcdV2Listen)
	}
	if c := mustLoad(t, nil, nil, `etcd_v2_listen=""`+"\n"); c.EtcdV2Listen != "" {
		t.Errorf("file: got %q", c.EtcdV2Listen)
	}
	for _, tc := range []struct{ arg, want string }{
		{"4001", `flag --etcd-v2-listen: etcd_v2_listen: invalid address "4001": want host:port`},
		{"http://127.0.0.1:4001", `invalid address "http://127.0.0.1:4001": want host:port (no scheme)`},
		{"127.0.0.1:70000", `invalid port "70000"`},
		{"unix:///tmp/s", "want host:port"},
	} {
		_, err := load(t, []string{"--etcd-v2-listen=" + tc.arg}, nil, "")
		wantErr(t, err, tc.want)
	}
	// Beyond loopback: the API's rule, a credential must exist.
	_, err := load(t, []string{"--etcd-v2-listen=0.0.0.0:4001", "--api-insecure"}, nil, "")
	wantErr(t, err, "etcd_v2_listen: 0.0.0.0:4001 is beyond loopback", "api_insecure=true without api_tokens_file")
	mustLoad(t, []string{"--etcd-v2-listen=127.0.0.1:4001", "--api-insecure"}, nil, "")
	mustLoad(t, []string{"--etcd-v2-listen=0.0.0.0:4001", "--api-insecure", "--api-tokens-file=/t"}, nil, "")
}
