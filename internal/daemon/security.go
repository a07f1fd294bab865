package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/web"
)

// security is the API's protection (docs/security.md).
type security struct {
	// policy authenticates API callers; nil lets everyone do everything
	// (api_insecure without any credential configured).
	policy *auth.Policy
	// serverTLS is the API's TLS configuration (nil: plain HTTP).
	serverTLS *tls.Config
	// peerClient calls other fleetd (status, journal proxying).
	peerClient *http.Client
	// peerToken is sent to other fleetd.
	peerToken string
}

// setupSecurity loads the API's credentials and TLS settings and refuses a
// listener beyond loopback that nobody would need a credential for.
func setupSecurity(cfg config.Config, log *slog.Logger) (*security, error) {
	s := &security{}
	var tokens *auth.Tokens
	if cfg.APITokensFile != "" {
		t, warns, err := auth.LoadTokens(cfg.APITokensFile)
		if err != nil {
			return nil, fmt.Errorf("fleetd: api_tokens_file: %w", err)
		}
		for _, w := range warns {
			log.Warn(w)
		}
		tokens = t
	}
	credentials := tokens.Len() > 0 || cfg.APITLSClientCA != ""
	if !credentials {
		if !cfg.APITrustLoopback {
			return nil, errors.New("fleetd: api_trust_loopback=false but no credential is configured: nobody could use the API; set api_tokens_file or api_tls_client_ca")
		}
		for _, addr := range cfg.APIAddr {
			if strings.HasPrefix(addr, "unix://") || auth.IsLoopbackListenAddr(addr) {
				continue
			}
			if !cfg.APIInsecure {
				return nil, fmt.Errorf("fleetd: api_addr %s listens beyond loopback but no credential is configured: "+
					"set api_tokens_file (bearer tokens) or api_tls_client_ca (client certificates), "+
					"or api_insecure=true to serve it without authentication (anyone who reaches it can run anything)", addr)
			}
			log.Warn("API listening beyond loopback WITHOUT authentication (api_insecure=true): anyone who reaches it can run anything", "addr", addr)
		}
	}
	if credentials || !cfg.APIInsecure {
		s.policy = auth.New(auth.Config{Tokens: tokens, TrustLocal: cfg.APITrustLoopback})
	}

	if cfg.APITLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.APITLSCert, cfg.APITLSKey)
		if err != nil {
			return nil, fmt.Errorf("fleetd: api_tls_cert: %w", err)
		}
		s.serverTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if cfg.APITLSClientCA != "" {
			pool, err := certPool("api_tls_client_ca", cfg.APITLSClientCA)
			if err != nil {
				return nil, err
			}
			// Token and loopback callers need no certificate; a
			// certificate that is given must verify.
			s.serverTLS.ClientCAs = pool
			s.serverTLS.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	clientTLS := &tls.Config{MinVersion: tls.VersionTLS12}
	caFile := cfg.APITLSCA
	if caFile == "" {
		caFile = cfg.APITLSClientCA
	}
	if caFile != "" {
		pool, err := certPool("api_tls_ca", caFile)
		if err != nil {
			return nil, err
		}
		clientTLS.RootCAs = pool
	}
	if s.serverTLS != nil {
		clientTLS.Certificates = s.serverTLS.Certificates
	}
	tr.TLSClientConfig = clientTLS
	s.peerClient = &http.Client{Transport: tr}

	switch {
	case cfg.PeerTokenFile != "":
		b, err := os.ReadFile(cfg.PeerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("fleetd: peer_token_file: %w", err)
		}
		s.peerToken = strings.TrimSpace(string(b))
		if s.peerToken == "" {
			return nil, fmt.Errorf("fleetd: peer_token_file %s is empty", cfg.PeerTokenFile)
		}
	case tokens != nil:
		// Peers are only read from: the weakest token that works.
		s.peerToken = tokens.First(auth.RoleReadOnly)
		if s.peerToken == "" {
			s.peerToken = tokens.First(auth.RoleAdmin)
		}
	}
	return s, nil
}

// authorizer is the dashboard's authorizer (nil: its default).
func (s *security) authorizer() web.Authorizer {
	if s.policy == nil {
		return nil
	}
	return s.policy
}

// wrap puts TLS on the TCP listeners and fixes the advertised URL's scheme.
func (s *security) wrap(ls []net.Listener, apiURL string) ([]net.Listener, string) {
	if s.serverTLS == nil {
		return ls, apiURL
	}
	for i, l := range ls {
		if _, ok := l.Addr().(*net.TCPAddr); ok {
			ls[i] = tls.NewListener(l, s.serverTLS)
		}
	}
	if rest, ok := strings.CutPrefix(apiURL, "http://"); ok {
		apiURL = "https://" + rest
	}
	return ls, apiURL
}

// unitEndpoint is the API URL given to units (FLEETCTL_ENDPOINT): the
// unix socket when the advertised URL would need TLS settings or a
// credential that units do not have.
func (s *security) unitEndpoint(ls []net.Listener, apiURL string) string {
	needsMore := s.serverTLS != nil
	if u, err := url.Parse(apiURL); err == nil && s.policy != nil && !auth.IsLoopbackListenAddr(u.Host) {
		needsMore = true
	}
	if needsMore {
		if ep := localEndpoint(ls, ""); ep != "" {
			return ep
		}
	}
	return localEndpoint(ls, apiURL)
}

func certPool(key, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("fleetd: %s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("fleetd: %s %s: no PEM certificates found", key, file)
	}
	return pool, nil
}

// embeddedEtcdTLS is the embedded member's TLS configuration.
func embeddedEtcdTLS(cfg config.Config) (client, peer etcdserver.TLSFiles) {
	client = etcdserver.TLSFiles{CertFile: cfg.EtcdServerCert, KeyFile: cfg.EtcdServerKey, CAFile: cfg.EtcdClientCA}
	peer = etcdserver.TLSFiles{CertFile: cfg.EtcdPeerCert, KeyFile: cfg.EtcdPeerKey, CAFile: cfg.EtcdPeerCA}
	return client, peer
}
