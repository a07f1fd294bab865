package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fleetd/fleet/internal/clusterauth"
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
		boolKey("api_trust_loopback", "false", "treat loopback TCP callers without a credential as admin (unsafe: every local user becomes root; the unix socket is the trusted local channel)",
			func(c *Config) *bool { return &c.APITrustLoopback }),
		stringKey("api_anonymous_read", "auto", "may TCP callers without a credential read (GET) the API, dashboard and /metrics: auto (from loopback only), true, false",
			func(c *Config) *string { return &c.APIAnonymousRead },
			func(s string) error {
				switch s {
				case "auto", "true", "false":
					return nil
				}
				return fmt.Errorf("invalid value %q: want auto, true or false", s)
			}),
		listKey("api_allowed_hosts", `""`, "extra Host header names the API and dashboard answer (besides loopback names and this machine's own IPs and names)",
			func(c *Config) *[]string { return &c.APIAllowedHosts }, nil),
		stringKey("cluster_token_file", `"" (<data_dir>/cluster-token)`, "file holding the cluster token (etcd root password, seed of etcd's TLS certificates); an embedded etcd that bootstraps without it generates <data_dir>/cluster-token",
			func(c *Config) *string { return &c.ClusterTokenFile }, nil),
		boolKey("etcd_insecure", "false", "allow plain-HTTP etcd URLs beyond loopback and etcd without authentication (anyone who reaches etcd is root on every machine; logs a warning every minute)",
			func(c *Config) *bool { return &c.EtcdInsecure }),
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
	// The v2 keys API beyond loopback follows the API's rule: callers
	// there need a credential, so there must be one. The admin token
	// always is one, unless api_insecure=true without api_tokens_file and
	// api_tls_client_ca turns the API's authentication off.
	if c.EtcdV2Listen != "" && !isLoopbackListenAddr(c.EtcdV2Listen) && c.APIInsecure && c.APITokensFile == "" && c.APITLSClientCA == "" {
		fail("etcd_v2_listen", "%s is beyond loopback, but api_insecure=true without api_tokens_file or api_tls_client_ca leaves fleetd without credentials; listen on loopback (127.0.0.1:PORT), set api_tokens_file, or drop api_insecure", c.EtcdV2Listen)
	}
	if !c.EtcdInsecure {
		for _, u := range c.EtcdServers {
			if clusterauth.PlainBeyondLoopback(u) {
				fail("etcd_servers", "%s is plain HTTP beyond loopback: the cluster token would cross the network in the clear; use https://%s (fleetd derives the certificates from cluster_token_file), or etcd_insecure=true", u, hostPort(u))
			}
		}
	}
	if !c.EmbeddedEtcd() {
		return errs
	}
	if c.EtcdInsecure && c.ClusterTokenFile != "" {
		fail("etcd_insecure", "turns etcd authentication off: it cannot be used with cluster_token_file")
	}
	if !c.EtcdInsecure {
		for _, l := range []struct {
			key, cert string
			urls      []string
		}{
			{"etcd_listen_client", "etcd_server_cert", c.EtcdListenClient},
			{"etcd_listen_peer", "etcd_peer_cert", c.EtcdListenPeer},
			{"etcd_initial_cluster", "etcd_peer_cert", initialClusterURLs(c.EtcdInitialCluster)},
		} {
			for _, u := range l.urls {
				if clusterauth.PlainBeyondLoopback(u) {
					fail(l.key, "%s is plain HTTP beyond loopback: anyone on that network could read and write etcd; use https://%s (fleetd derives the certificates from the cluster token; or set %s), or etcd_insecure=true", u, hostPort(u), l.cert)
				}
			}
		}
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
	// https without certificate files: derived from the cluster token,
	// which etcd_insecure turns off.
	if err := schemesMatch(c.EtcdListenClient, c.EtcdServerCert != "", !c.EtcdInsecure); err != nil {
		fail("etcd_listen_client", "%v (etcd_server_cert %s)", err, setOrNot(c.EtcdServerCert))
	}
	if err := schemesMatch(c.EtcdListenPeer, c.EtcdPeerCert != "", !c.EtcdInsecure); err != nil {
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

// schemesMatch checks that every URL is https when TLS files are
// configured, and http otherwise unless derived certificates may serve
// https.
func schemesMatch(urls []string, files, derived bool) error {
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		switch {
		case files && u.Scheme != "https":
			return errors.New("URL " + s + " must use https")
		case !files && !derived && u.Scheme != "http":
			return errors.New("URL " + s + " must use http (etcd_insecure=true: no cluster token to derive certificates from)")
		}
	}
	return nil
}

// hostPort is the host:port of a URL, for messages.
func hostPort(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Host
}

// initialClusterURLs are the peer URLs of an etcd_initial_cluster value.
func initialClusterURLs(s string) []string {
	var out []string
	for _, m := range strings.Split(s, ",") {
		if _, u, ok := strings.Cut(m, "="); ok {
			out = append(out, strings.TrimSpace(u))
		}
	}
	return out
}
