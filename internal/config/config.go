package config

import (
	"fmt"
	"github.com/fleetd/fleet/internal/fleet"
	"time"
)

// Built-in defaults and well-known paths.
const (
	// DefaultPlacementStrategy is placement_strategy's default.
	DefaultPlacementStrategy  = "spread"
	DefaultConfigFile         = "/etc/fleet/fleet.conf"
	DefaultEtcdKeyPrefix      = "/_coreos.com/fleet/"
	DefaultEtcdRequestTimeout = 2 * time.Second
	DefaultEtcdListenClient   = "http://127.0.0.1:2379"
	// DefaultEtcdListenPeer is https even on loopback: members must
	// present a certificate derived from the cluster token, so local
	// users cannot talk raft (or renew leases) to the member.
	DefaultEtcdListenPeer = "https://127.0.0.1:2380"
	// InsecureEtcdListenPeer replaces it under etcd_insecure (no token
	// to derive certificates from).
	InsecureEtcdListenPeer         = "http://127.0.0.1:2380"
	DefaultEtcdInitialClusterState = "new"
	DefaultEngineReconcileInterval = 2 * time.Second
	DefaultAgentTTL                = 9 * time.Second
	DefaultTokenLimit              = 100
	DefaultDataDir                 = "/var/lib/fleet"
	DefaultAPITCPAddr              = "127.0.0.1:49153"
	DefaultAPIUnixAddr             = "unix:///var/run/fleet.sock"
	DefaultLogFormat               = "text"

	// DefaultEtcdV2Listen is where fleetd serves etcd's v2 keys API
	// (etcd_v2_listen): etcd v2's legacy client port, loopback only.
	DefaultEtcdV2Listen = "127.0.0.1:4001"

	// SystemMachineIDFile is where the host's machine ID is read from.
	SystemMachineIDFile = "/etc/machine-id"
	// MachineIDFileName is the file under DataDir that keeps a generated
	// machine ID.
	MachineIDFileName = "machine-id"
	// UnitsDirName is the default units directory under DataDir.
	UnitsDirName = "units"
)

// Free space of the embedded etcd's file system (etcd_min_free_space).
const (
	// DefaultEtcdMinFreeSpace: below it, etcd refuses writes
	// (etcdserver.DefaultMinFreeSpace).
	DefaultEtcdMinFreeSpace = 256 << 20
	// MinEtcdMinFreeSpace is the smallest non-zero etcd_min_free_space:
	// etcd preallocates its log in 64 MB segments.
	MinEtcdMinFreeSpace = 64 << 20
)

// Config is fleetd's configuration. The comment on each field gives its key.
type Config struct {
	// EtcdServers (etcd_servers) are the client URLs of an external etcd
	// cluster. Empty means: start an embedded etcd member.
	EtcdServers []string
	// EtcdKeyPrefix (etcd_key_prefix) is the root of fleet's keyspace.
	EtcdKeyPrefix string
	// EtcdCAFile, EtcdCertFile, EtcdKeyFile (etcd_cafile, etcd_certfile,
	// etcd_keyfile) configure TLS to etcd.
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	// EtcdUsername, EtcdPassword (etcd_username, etcd_password) are etcd
	// credentials.
	EtcdUsername, EtcdPassword string
	// EtcdRequestTimeout (etcd_request_timeout) bounds one etcd request.
	EtcdRequestTimeout time.Duration

	// EtcdListenClient (etcd_listen_client) are the embedded member's
	// client URLs.
	EtcdListenClient []string
	// EtcdListenPeer (etcd_listen_peer) are the embedded member's peer URLs.
	EtcdListenPeer []string
	// EtcdName (etcd_name) is the embedded member's name; by default the
	// short (8-character) machine ID.
	EtcdName string
	// EtcdInitialCluster (etcd_initial_cluster) is "name=peerURL,..." for a
	// multi-member embedded cluster; empty means a single-node cluster.
	EtcdInitialCluster string
	// EtcdInitialClusterState (etcd_initial_cluster_state) is "new" or
	// "existing".
	EtcdInitialClusterState string
	// EtcdMinFreeSpace (etcd_min_free_space), in bytes: with less free
	// space on the embedded etcd's file system, etcd refuses writes until
	// 64 MB more are free again. 0 disables the guard.
	EtcdMinFreeSpace int64

	// EngineReconcileInterval (engine_reconcile_interval) is the engine's
	// period; the engine lease lasts five times as long.
	EngineReconcileInterval time.Duration
	// PublicIP (public_ip) is the address published for this machine; empty
	// until ResolvePublicIP picks one.
	PublicIP string
	// Metadata (metadata) are this machine's key/value attributes. Never nil
	// after Load.
	Metadata map[string]string
	// Capacity (capacity) overrides the CPUs and memory this machine offers
	// to units ([X-Fleet] CPU= and Memory= reservations); a zero dimension
	// is detected (see DetectCapacity).
	Capacity fleet.Resources
	// PlacementStrategy (placement_strategy) is the scheduler's choice
	// among machines that fit: "spread" (least loaded) or "binpack".
	PlacementStrategy string
	// AgentTTL (agent_ttl) is the TTL of machine presence and unit states.
	AgentTTL time.Duration
	// TokenLimit (token_limit) is the API page size, 1..65535.
	TokenLimit int
	// DisableEngine (disable_engine) keeps this machine out of the engine
	// leader election.
	DisableEngine bool
	// StopUnitsOnExit (stop_units_on_exit) makes a graceful exit stop the
	// machine's units and revoke its lease (fleet's behaviour). By default
	// units keep running and a fleetd restarted within agent_ttl adopts
	// them.
	StopUnitsOnExit bool
	// DockerRegistration (docker_registration) publishes the published
	// ports of the Docker containers running here (registry/docker), when
	// the Docker socket exists. Default true.
	DockerRegistration bool
	// Verbosity (verbosity) > 0 enables debug logging.
	Verbosity int
	// DataDir (data_dir) holds fleetd's state (embedded etcd, machine ID).
	DataDir string
	// UnitsDirectory (units_directory) is where unit files are written; by
	// default <data_dir>/units.
	UnitsDirectory string
	// MachineID (machine_id) overrides the machine ID; empty until
	// ResolveMachineID fills it in.
	MachineID string
	// APIAddr (api_addr) are the API listen addresses: "host:port" or
	// "unix:///absolute/path".
	APIAddr []string
	// EtcdV2Listen (etcd_v2_listen) is the "host:port" fleetd serves etcd's
	// v2 keys API on (internal/etcdv2), for etcdctl v2 and v2 clients in
	// units; "" serves none.
	EtcdV2Listen string
	// LogFormat (log_format) is "text" or "json".
	LogFormat string

	// Security settings (security.go, docs/security.md).

	// APITLSCert, APITLSKey (api_tls_cert, api_tls_key): serve HTTPS on
	// the API's TCP listeners.
	APITLSCert, APITLSKey string
	// APITLSClientCA (api_tls_client_ca) verifies client certificates
	// (mTLS); a verified certificate is a credential whose role comes from
	// its OU (admin, readonly).
	APITLSClientCA string
	// APITLSCA (api_tls_ca) is the CA bundle fleetd trusts when it calls
	// peers over HTTPS; by default api_tls_client_ca, else the system's.
	APITLSCA string
	// APITokensFile (api_tokens_file) holds "<role> <token>" lines.
	APITokensFile string
	// PeerTokenFile (peer_token_file) holds the token fleetd sends to
	// peers; by default a token of api_tokens_file.
	PeerTokenFile string
	// APIInsecure (api_insecure) lets a non-loopback API listener run
	// without any credential configured.
	APIInsecure bool
	// APITrustLoopback (api_trust_loopback) treats loopback TCP callers
	// without a credential as admin (default false: the unix socket is the
	// trusted local channel; loopback callers may only read).
	APITrustLoopback bool
	// APIAnonymousRead (api_anonymous_read) is "auto" (default: TCP
	// callers without a credential may read when they come from
	// loopback), "true" (from anywhere) or "false" (never).
	APIAnonymousRead string
	// APIAllowedHosts (api_allowed_hosts) are Host header names the API
	// answers besides loopback names and the machine's own IPs and names.
	APIAllowedHosts []string
	// ClusterTokenFile (cluster_token_file) holds the cluster token: the
	// etcd root password and the seed of the etcd TLS certificates. An
	// embedded etcd that bootstraps without it generates
	// <data_dir>/cluster-token.
	ClusterTokenFile string
	// EtcdInsecure (etcd_insecure) allows plain-HTTP etcd URLs beyond
	// loopback and an etcd without authentication.
	EtcdInsecure bool
	// EtcdServerCert, EtcdServerKey (etcd_server_cert, etcd_server_key):
	// the embedded etcd serves its client URLs over TLS.
	EtcdServerCert, EtcdServerKey string
	// EtcdClientCA (etcd_client_ca): the embedded etcd requires client
	// certificates signed by this CA.
	EtcdClientCA string
	// EtcdPeerCert, EtcdPeerKey, EtcdPeerCA (etcd_peer_cert, etcd_peer_key,
	// etcd_peer_ca): TLS between embedded etcd members (peer certificates
	// are verified against EtcdPeerCA).
	EtcdPeerCert, EtcdPeerKey, EtcdPeerCA string

	// Version is set by --version or the argument "version": the caller
	// should print the version and exit. Load does not read the file or the
	// environment in that case.
	Version bool
	// ConfigFile is the file that was read, "" if none.
	ConfigFile string
	// Warnings are non-fatal problems (deprecated keys, ignored settings,
	// a fallback public IP) the caller should log.
	Warnings []string
}

// Defaults returns the built-in configuration. UnitsDirectory, EtcdName,
// MachineID and PublicIP are left empty: they depend on other settings or on
// the host.
func Defaults() Config {
	return Config{
		EtcdKeyPrefix:           DefaultEtcdKeyPrefix,
		EtcdRequestTimeout:      DefaultEtcdRequestTimeout,
		EtcdListenClient:        []string{DefaultEtcdListenClient},
		EtcdListenPeer:          []string{DefaultEtcdListenPeer},
		EtcdInitialClusterState: DefaultEtcdInitialClusterState,
		EtcdMinFreeSpace:        DefaultEtcdMinFreeSpace,
		EngineReconcileInterval: DefaultEngineReconcileInterval,
		PlacementStrategy:       DefaultPlacementStrategy,
		Metadata:                map[string]string{},
		AgentTTL:                DefaultAgentTTL,
		TokenLimit:              DefaultTokenLimit,
		DataDir:                 DefaultDataDir,
		APIAddr:                 []string{DefaultAPITCPAddr, DefaultAPIUnixAddr},
		EtcdV2Listen:            DefaultEtcdV2Listen,
		LogFormat:               DefaultLogFormat,
		APIAnonymousRead:        "auto",
		DockerRegistration:      true,
	}
}

// EmbeddedEtcd reports whether fleetd should run its own etcd member.
func (c *Config) EmbeddedEtcd() bool { return len(c.EtcdServers) == 0 }

// Error is a configuration error: a bad value, an unknown key or a syntax
// error in the file.
type Error struct {
	// Source is where the value came from: "flag --agent-ttl",
	// "env FLEET_AGENT_TTL", "/etc/fleet/fleet.conf:3", or a file path.
	Source string
	// Key is the configuration key, "" for file syntax errors.
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Source, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
