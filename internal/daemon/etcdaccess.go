package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// AdminTokenFileName is the admin API token's file under the data dir.
const AdminTokenFileName = "admin-token"

// clusterToken returns the cluster token this fleetd uses ("" for none:
// etcd_insecure, or an external etcd reached without one). A fleetd that
// runs an embedded member keeps it in <data_dir>/cluster-token, generated
// on the first start unless cluster_token_file names it.
func clusterToken(cfg config.Config, log *slog.Logger) (string, error) {
	if cfg.EtcdInsecure {
		return "", nil
	}
	local := filepath.Join(cfg.DataDir, clusterauth.TokenFileName)
	if cfg.ClusterTokenFile != "" {
		tok, warn, err := clusterauth.ReadToken(cfg.ClusterTokenFile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("fleetd: cluster_token_file %s does not exist: copy the %s file of the fleetd that started the cluster (its data dir), or create one for a new cluster with: head -c 32 /dev/urandom | base64 > %s", cfg.ClusterTokenFile, clusterauth.TokenFileName, cfg.ClusterTokenFile)
			}
			return "", fmt.Errorf("fleetd: cluster_token_file: %w", err)
		}
		if warn != "" {
			log.Warn(warn)
		}
		if cfg.EmbeddedEtcd() && filepath.Clean(cfg.ClusterTokenFile) != local {
			// <data_dir>/cluster-token is where other tools look for it.
			if old, _, err := clusterauth.ReadToken(local); err != nil || old != tok {
				if err := clusterauth.WriteToken(local, tok); err != nil {
					return "", fmt.Errorf("fleetd: %w", err)
				}
			}
		}
		return tok, nil
	}
	if !cfg.EmbeddedEtcd() {
		return "", nil
	}
	tok, created, warn, err := clusterauth.EnsureToken(local, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("fleetd: cluster token: %w", err)
	}
	if warn != "" {
		log.Warn(warn)
	}
	if created {
		log.Info("generated the cluster token: machines that join this cluster need a copy of it (--cluster-token-file)", "file", local)
	}
	return tok, nil
}

// embeddedTLS returns the embedded member's TLS files: those configured,
// or, for https URLs without them, certificates derived from the cluster
// token and written to <data_dir>/tls.
func embeddedTLS(cfg config.Config, token string) (client, peer etcdserver.TLSFiles, err error) {
	client, peer = embeddedEtcdTLS(cfg)
	needClient := client.CertFile == "" && anyHTTPS(cfg.EtcdListenClient)
	needPeer := peer.CertFile == "" && anyHTTPS(cfg.EtcdListenPeer)
	if !needClient && !needPeer {
		return client, peer, nil
	}
	if token == "" {
		return client, peer, errors.New("fleetd: https etcd URLs need certificates: set etcd_server_cert/etcd_peer_cert, or leave etcd_insecure off so that fleetd derives them from the cluster token")
	}
	ca, err := clusterauth.DeriveAuthority(token)
	if err != nil {
		return client, peer, fmt.Errorf("fleetd: %w", err)
	}
	hostname, _ := os.Hostname()
	urls := slices.Concat(cfg.EtcdListenClient, cfg.EtcdListenPeer)
	files, err := ca.WriteFiles(filepath.Join(cfg.DataDir, "tls"), clusterauth.Hosts(urls, cfg.PublicIP, hostname), time.Now(), rand.Reader)
	if err != nil {
		return client, peer, fmt.Errorf("fleetd: %w", err)
	}
	if needClient {
		// Clients authenticate with the token (etcd's root user), not
		// with certificates.
		client = etcdserver.TLSFiles{CertFile: files.CertFile, KeyFile: files.KeyFile}
	}
	if needPeer {
		// Members must present a certificate of the cluster's CA.
		peer = etcdserver.TLSFiles{CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile}
	}
	return client, peer, nil
}

func anyHTTPS(urls []string) bool {
	return slices.ContainsFunc(urls, func(u string) bool { return strings.HasPrefix(u, "https://") })
}

// etcdCredentials are fleetd's own client settings.
func etcdCredentials(cfg config.Config, endpoints []string, token string) clusterauth.Credentials {
	return clusterauth.Credentials{
		Endpoints: endpoints, Token: token, TokenSource: tokenSource(cfg),
		Username: cfg.EtcdUsername, Password: cfg.EtcdPassword,
		CAFile: cfg.EtcdCAFile, CertFile: cfg.EtcdCertFile, KeyFile: cfg.EtcdKeyFile,
		Insecure: cfg.EtcdInsecure, TokenFlag: tokenFlagName(cfg),
	}
}

func tokenSource(cfg config.Config) string {
	if cfg.ClusterTokenFile != "" {
		return cfg.ClusterTokenFile
	}
	return filepath.Join(cfg.DataDir, clusterauth.TokenFileName)
}

func tokenFlagName(cfg config.Config) string {
	if cfg.ClusterTokenFile != "" {
		return "--cluster-token-file " + cfg.ClusterTokenFile
	}
	return "--cluster-token-file"
}

// newEtcdClient connects to etcd and checks, with one read, that the
// credentials are accepted: a missing or wrong token fails here, at start,
// with a message naming the flag.
func newEtcdClient(ctx context.Context, creds clusterauth.Credentials, prefix string, dialOpts []grpc.DialOption, log *slog.Logger) (*etcdkv.Client, error) {
	kc, err := etcdkv.Dial(ctx, creds, etcdkv.DialOptions{ProbeKey: prefix, GRPC: dialOpts, Logger: log, Wait: true})
	if err != nil {
		return nil, fmt.Errorf("fleetd: %w", err)
	}
	return kc, nil
}

// warnInsecureEtcd logs that etcd is open to anyone who reaches it; fleetd
// says so at start and then every minute (repeat).
func warnInsecureEtcd(log *slog.Logger) {
	log.Warn("etcd_insecure=true: etcd has no authentication and may be reached over plain HTTP; anyone who reaches it is root on every machine of this cluster")
}

// repeat calls f every interval until ctx ends, then returns nil.
func repeat(ctx context.Context, interval time.Duration, f func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f()
		}
	}
}

// adminToken makes sure this machine has an admin API token in
// <data_dir>/admin-token (mode 0600) and that etcd knows its hash, so that
// every fleetd of the cluster accepts it.
func adminToken(ctx context.Context, st *store.Store, dataDir, machineID string, log *slog.Logger) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFileName)
	tok, created, warn, err := clusterauth.EnsureToken(path, rand.Reader)
	if err != nil {
		return "", fmt.Errorf("fleetd: admin token: %w", err)
	}
	if warn != "" {
		log.Warn(warn)
	}
	// Like the machine's registration, this waits for etcd as long as it
	// takes (an etcd that is not up yet, or down, is not a reason to exit).
	backoff := 250 * time.Millisecond
	for {
		_, err := st.RegisterToken(ctx, tokenHash(tok), store.TokenRecord{Role: "admin", Machine: machineID, Created: time.Now().UTC()})
		if err == nil {
			break
		}
		log.Warn("registering the admin token in etcd failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("fleetd: registering the admin token: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if created {
		log.Info("wrote an admin API token (fleetctl --token-file, or FLEETCTL_TOKEN); every fleetd of the cluster accepts it", "file", path)
	}
	return tok, nil
}

// tokenHash is the key a token is registered under: hex SHA-256.
func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// tokenLookup answers "which role has this token?" from etcd, caching
// answers: known tokens for a minute, unknown ones for a few seconds (so
// that guessing costs etcd little).
type tokenLookup struct {
	st    *store.Store
	log   *slog.Logger
	now   func() time.Time
	mu    sync.Mutex
	cache map[string]lookupEntry
}

type lookupEntry struct {
	role    string
	expires time.Time
}

const (
	knownTokenTTL   = time.Minute
	unknownTokenTTL = 3 * time.Second
	maxCachedTokens = 4096
)

func newTokenLookup(st *store.Store, log *slog.Logger) *tokenLookup {
	return &tokenLookup{st: st, log: log, now: time.Now, cache: map[string]lookupEntry{}}
}

// Role returns the role registered for tok ("" if none or on error).
func (l *tokenLookup) Role(ctx context.Context, tok string) string {
	h := tokenHash(tok)
	now := l.now()
	l.mu.Lock()
	e, ok := l.cache[h]
	l.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.role
	}
	rec, found, err := l.st.Token(ctx, h)
	if err != nil {
		l.log.Warn("looking up an API token in etcd", "err", err)
		return ""
	}
	e = lookupEntry{expires: now.Add(unknownTokenTTL)}
	if found {
		e = lookupEntry{role: rec.Role, expires: now.Add(knownTokenTTL)}
	}
	l.mu.Lock()
	if len(l.cache) >= maxCachedTokens {
		clear(l.cache)
	}
	l.cache[h] = e
	l.mu.Unlock()
	return e.role
}
