package config

import (
	"strings"
	"testing"
)

func TestSecurityDefaults(t *testing.T) {
	c := mustLoad(t, nil, nil, "")
	if !c.APITrustLoopback || c.APIInsecure || c.APITokensFile != "" || c.APITLSCert != "" {
		t.Errorf("defaults: trust_loopback=%v insecure=%v tokens=%q cert=%q", c.APITrustLoopback, c.APIInsecure, c.APITokensFile, c.APITLSCert)
	}
	c = mustLoad(t, []string{"--api-trust-loopback=false", "--api-insecure"}, nil, "")
	if c.APITrustLoopback || !c.APIInsecure {
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
		{"https without etcd cert", []string{"--etcd-listen-client=https://127.0.0.1:2379"},
			[]string{"etcd_listen_client: URL https://127.0.0.1:2379 must use http (etcd_server_cert is not set)"}},
		{"etcd client CA without TLS", []string{"--etcd-client-ca=/ca"}, []string{"etcd_client_ca: client certificates need TLS"}},
		{"etcd server cert without etcd_cafile", []string{"--etcd-server-cert=/c", "--etcd-server-key=/k", "--etcd-listen-client=https://127.0.0.1:2379"},
			[]string{"etcd_server_cert: fleetd's own etcd client must verify it: set etcd_cafile"}},
		{"etcd client CA without own cert", []string{"--etcd-server-cert=/c", "--etcd-server-key=/k", "--etcd-cafile=/ca", "--etcd-client-ca=/ca", "--etcd-listen-client=https://127.0.0.1:2379"},
			[]string{"etcd_client_ca: fleetd's own etcd client needs a certificate"}},
		{"etcd peer cert without key", []string{"--etcd-peer-cert=/c", "--etcd-listen-peer=https://127.0.0.1:2380"}, []string{"etcd_peer_cert: needs etcd_peer_key"}},
		{"etcd peer CA without TLS", []string{"--etcd-peer-ca=/ca"}, []string{"etcd_peer_ca: peer certificates need TLS"}},
		{"peer https without cert", []string{"--etcd-listen-peer=https://127.0.0.1:2380"}, []string{"etcd_listen_peer: URL https://127.0.0.1:2380 must use http"}},
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
