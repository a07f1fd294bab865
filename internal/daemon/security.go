package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
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
	// hosts are the Host names the API answers over TCP.
	hosts auth.HostAllowlist
	// sessions are the dashboard's login codes and sessions.
	sessions *auth.Sessions
	// hint tells refused callers how to authenticate.
	hint string
	// trustLoopback: loopback TCP callers are admin (api_trust_loopback).
	trustLoopback bool
	// tokens answers for the tokens registered in etcd (useTokenLookup).
	tokens atomic.Pointer[tokenLookup]
	// tokenRoles judges access tokens as the API does (api_tokens_file,
	// then the tokens registered in etcd), even when policy is nil.
	tokenRoles *auth.Policy
}

// setupSecurity loads the API's credentials and TLS settings.
func setupSecurity(cfg config.Config, log *slog.Logger) (*security, error) {
	s := &security{sessions: auth.NewSessions(), trustLoopback: cfg.APITrustLoopback}
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
	s.tokenRoles = auth.New(auth.Config{Tokens: tokens, Lookup: s.lookupToken})
	anonymous, err := auth.ParseAnonymousRead(cfg.APIAnonymousRead)
	if err != nil {
		return nil, fmt.Errorf("fleetd: %w", err)
	}
	// Every fleetd has an admin token (<data_dir>/admin-token) that the
	// whole cluster accepts, so there is always a credential: an address
	// beyond loopback needs no api_tokens_file. api_insecure without
	// configured credentials keeps fleet's behaviour: no authentication.
	if cfg.APIInsecure && tokens.Len() == 0 && cfg.APITLSClientCA == "" {
		log.Warn("api_insecure=true: the API has NO authentication: anyone who reaches it is admin, i.e. root on every machine of the cluster")
	} else {
		s.policy = auth.New(auth.Config{
			Tokens: tokens, Lookup: s.lookupToken, Sessions: s.sessions,
			TrustLoopback: cfg.APITrustLoopback, AnonymousRead: anonymous,
		})
	}
	if cfg.APITrustLoopback {
		log.Warn("api_trust_loopback=true: loopback TCP callers without a credential are admin: every local user and process (a web page in a local browser too) is root on every machine of the cluster; the unix socket is the safe local channel")
	}
	s.hosts = hostAllowlist(cfg)
	s.hint = credentialHint(cfg)

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
// credential that units do not have (without one, TCP callers may only
// read: `fleetctl kv set` in a unit needs the socket).
func (s *security) unitEndpoint(ls []net.Listener, apiURL string) string {
	needsMore := s.serverTLS != nil
	if u, err := url.Parse(apiURL); err == nil && s.policy != nil && !(s.trustLoopback && auth.IsLoopbackListenAddr(u.Host)) {
		needsMore = true
	}
	if needsMore {
		if ep := localEndpoint(ls, ""); ep != "" {
			return ep
		}
	}
	return localEndpoint(ls, apiURL)
}

// useTokenLookup makes the API accept the tokens registered in etcd (the
// admin tokens of every fleetd of the cluster). Call it before serving.
func (s *security) useTokenLookup(l *tokenLookup) { s.tokens.Store(l) }

// lookupToken is auth.Config.Lookup: the role of a token registered in
// etcd, RoleNone if unknown or before useTokenLookup.
func (s *security) lookupToken(ctx context.Context, tok string) auth.Role {
	l := s.tokens.Load()
	if l == nil {
		return auth.RoleNone
	}
	role, err := auth.ParseRole(l.Role(ctx, tok))
	if err != nil {
		return auth.RoleNone
	}
	return role
}

// hostAllowlist is the set of Host names the API answers over TCP:
// loopback (always), this machine's interface addresses and public_ip,
// its host name (and the short form), the hosts of api_addr and
// api_allowed_hosts. Interface addresses are read once, at start.
func hostAllowlist(cfg config.Config) auth.HostAllowlist {
	names := slices.Clone(cfg.APIAllowedHosts)
	names = append(names, cfg.PublicIP)
	if h, err := os.Hostname(); err == nil && h != "" {
		short, _, _ := strings.Cut(h, ".")
		names = append(names, h, short)
	}
	for _, addr := range cfg.APIAddr {
		if host, _, err := net.SplitHostPort(addr); err == nil && !strings.HasPrefix(addr, "unix://") {
			names = append(names, host)
		}
	}
	var ips []netip.Addr
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ips = append(ips, ip)
				}
			}
		}
	}
	return auth.NewHostAllowlist(names, ips)
}

// credentialHint tells a refused caller how to authenticate: the unix
// socket, or the admin token.
func credentialHint(cfg config.Config) string {
	var parts []string
	for _, addr := range cfg.APIAddr {
		if path, ok := strings.CutPrefix(addr, "unix://"); ok {
			parts = append(parts, fmt.Sprintf("use fleetctl over the unix socket (--endpoint unix://%s, as %s)", path, socketUsers()))
			break
		}
	}
	parts = append(parts, fmt.Sprintf("pass --token, --token-file or FLEETCTL_TOKEN (an admin token is in %s on every fleet machine, this one included; any fleetd of the cluster accepts it)",
		filepath.Join(cfg.DataDir, AdminTokenFileName)))
	return strings.Join(parts, ", or ")
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

// tokenCheckTimeout bounds a token lookup in etcd for the etcd v2 API
// (etcdv2.TokenAuth's check has no context).
const tokenCheckTimeout = 10 * time.Second

// adminToken reports whether tok is an admin credential of the API: a token
// of api_tokens_file or one registered in etcd (the admin token of every
// fleetd), judged as the API judges a bearer token. It is the etcd v2 API's
// check (etcdv2.TokenAuth).
func (s *security) adminToken(tok string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), tokenCheckTimeout)
	defer cancel()
	return s.tokenRoles.TokenRole(ctx, tok) >= auth.RoleAdmin
}
