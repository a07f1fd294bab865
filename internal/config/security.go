package config

import (
	"errors"
	"fmt"
	"net/url"
)

// securityKeyDefs are the TLS and credential keys (docs/security.md).
func securityKeyDefs() []keyDef {
	str := func(key, usage string, field func(*Config) *string) keyDef {
		return stringKey(key, `""`, usage, field, nil)
	}
	return []keyDef{
		str("api_tls_cert", "certificate file: serve the API over HTTPS on its TCP addresses",
			func(c *Config) *string { return &c.APITLSCert }),
		str("api_tls_key", "key file of api_tls_cert",
			func(c *Config) *string { return &c.APITLSKey }),
		str("api_tls_client_ca", "CA file: verify API client certificates (mTLS); the certificate's OU (admin|readonly) gives the role",
			func(c *Config) *string { return &c.APITLSClientCA }),
		stringKey("api_tls_ca", `"" (api_tls_client_ca, else system roots)`, "CA file fleetd trusts when it calls other fleetd over HTTPS",
			func(c *Config) *string { return &c.APITLSCA }, nil),
		str("api_tokens_file", "file of \"<role> <token>\" lines (roles admin, readonly) accepted as Authorization: Bearer",
			func(c *Config) *string { return &c.APITokensFile }),
		stringKey("peer_token_file", `"" (a token of api_tokens_file)`, "file holding the token fleetd sends to other fleetd (status, journal)",
			func(c *Config) *string { return &c.PeerTokenFile }, nil),
		boolKey("api_insecure", "false", "allow an API address beyond loopback without any credential configured (anyone who reaches it is admin)",
			func(c *Config) *bool { return &c.APIInsecure }),
		boolKey("api_trust_loopback", "true", "treat unix-socket and loopback callers without a credential as admin",
			func(c *Config) *bool { return &c.APITrustLoopback }),
		str("etcd_server_cert", "embedded etcd: certificate for its client URLs (https)",
			func(c *Config) *string { return &c.EtcdServerCert }),
		str("etcd_server_key", "embedded etcd: key of etcd_server_cert",
			func(c *Config) *string { return &c.EtcdServerKey }),
		str("etcd_client_ca", "embedded etcd: require client certificates signed by this CA",
			func(c *Config) *string { return &c.EtcdClientCA }),
		str("etcd_peer_cert", "embedded etcd: certificate for its peer URLs (https), also its client certificate towards peers",
			func(c *Config) *string { return &c.EtcdPeerCert }),
		str("etcd_peer_key", "embedded etcd: key of etcd_peer_cert",
			func(c *Config) *string { return &c.EtcdPeerKey }),
		str("etcd_peer_ca", "embedded etcd: CA that peer certificates must be signed by",
			func(c *Config) *string { return &c.EtcdPeerCA }),
	}
}

// checkSecurity validates the security keys against each other and against
// the listen URLs. sources maps keys to where they were set.
func (c *Config) checkSecurity(sources map[string]string) []error {
	var errs []error
	fail := func(key string, format string, args ...any) {
		src := sources[key]
		if src == "" {
			src = "configuration"
		}
		errs = append(errs, &Error{Source: src, Key: key, Err: fmt.Errorf(format, args...)})
	}
	pair := func(a, b, va, vb string) {
		if va != "" && vb == "" {
			fail(a, "needs %s too", b)
		}
		if va == "" && vb != "" {
			fail(b, "needs %s too", a)
		}
	}
	pair("api_tls_cert", "api_tls_key", c.APITLSCert, c.APITLSKey)
	if c.APITLSClientCA != "" && c.APITLSCert == "" {
		fail("api_tls_client_ca", "client certificates need TLS: set api_tls_cert and api_tls_key")
	}
	if !c.EmbeddedEtcd() {
		return errs
	}
	pair("etcd_server_cert", "etcd_server_key", c.EtcdServerCert, c.EtcdServerKey)
	pair("etcd_peer_cert", "etcd_peer_key", c.EtcdPeerCert, c.EtcdPeerKey)
	if c.EtcdClientCA != "" && c.EtcdServerCert == "" {
		fail("etcd_client_ca", "client certificates need TLS: set etcd_server_cert and etcd_server_key")
	}
	// fleetd's own client of the embedded member.
	if c.EtcdServerCert != "" && c.EtcdCAFile == "" {
		fail("etcd_server_cert", "fleetd's own etcd client must verify it: set etcd_cafile to its CA")
	}
	if c.EtcdClientCA != "" && c.EtcdCertFile == "" {
		fail("etcd_client_ca", "fleetd's own etcd client needs a certificate: set etcd_certfile and etcd_keyfile")
	}
	if c.EtcdPeerCA != "" && c.EtcdPeerCert == "" {
		fail("etcd_peer_ca", "peer certificates need TLS: set etcd_peer_cert and etcd_peer_key")
	}
	if err := schemesMatch(c.EtcdListenClient, c.EtcdServerCert != ""); err != nil {
		fail("etcd_listen_client", "%v (etcd_server_cert %s)", err, setOrNot(c.EtcdServerCert))
	}
	if err := schemesMatch(c.EtcdListenPeer, c.EtcdPeerCert != ""); err != nil {
		fail("etcd_listen_peer", "%v (etcd_peer_cert %s)", err, setOrNot(c.EtcdPeerCert))
	}
	return errs
}

func setOrNot(s string) string {
	if s == "" {
		return "is not set"
	}
	return "is set"
}

// schemesMatch checks that every URL is https when TLS is configured and
// http otherwise.
func schemesMatch(urls []string, tls bool) error {
	want := "http"
	if tls {
		want = "https"
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if u.Scheme != want {
			return errors.New("URL " + s + " must use " + want)
		}
	}
	return nil
}
