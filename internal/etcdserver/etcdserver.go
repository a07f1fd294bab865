// Package etcdserver runs an embedded etcd member inside fleetd.
//
// The zero-setup case is a single node: Start with only Name and DataDir set
// gives a one-member cluster listening on 127.0.0.1:2379 (clients) and
// 127.0.0.1:2380 (peers). Port 0 is accepted for any listen URL; ClientURLs
// and PeerURLs then report the ports the kernel picked. Port 0 is only useful
// for a single node: the member's advertised peer URL is stored in the
// cluster as given, so a member that other members must reach needs real
// ports.
//
// # A static 3-member cluster
//
// Start every member with the same InitialCluster and ClusterState "new",
// each with its own Name, DataDir and URLs:
//
//	etcdserver.Config{
//		Name:                "m1",
//		DataDir:             "/var/lib/fleet/etcd",
//		ListenClientURLs:    []string{"http://10.0.0.1:2379"},
//		ListenPeerURLs:      []string{"http://10.0.0.1:2380"},
//		InitialCluster:      "m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380",
//		ClusterState:        "new",
//	}
//
// Start blocks until the member has joined a quorum (or ctx ends), so the
// three Start calls must run concurrently (on three machines, or in three
// goroutines in a test).
//
// # Adding a member to a running cluster
//
//  1. Through a client of the running cluster, announce the new member's peer
//     URL: cli.MemberAdd(ctx, []string{"http://10.0.0.4:2380"}). The
//     response lists the members, the new one with an empty name. etcd
//     refuses ("unhealthy cluster") until every member has been connected
//     for about 5 s, so retry that error for a while.
//  2. Start the new member with ClusterState "existing" and an InitialCluster
//     that lists every member of the response, the new one under its Name:
//     "m1=http://10.0.0.1:2380,...,m4=http://10.0.0.4:2380".
//
// The new member fetches the cluster state from its peers; its DataDir must
// be empty on the first start. Removing a member is cli.MemberRemove(id)
// followed by stopping it and deleting its DataDir.
//
// # Disk space
//
// Start refuses a data dir with less than MinFreeBytes free. While the
// member runs, its disk guard (diskguard.go) raises etcd's NOSPACE alarm
// when free space drops below Config.MinFreeSpace, so that the cluster
// refuses writes before etcd runs out of space, and disarms it once space
// is back; ExplainNoSpace turns the resulting "database space exceeded"
// errors into a message naming the machine and the directory.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// Defaults applied by Start to zero fields of Config.
const (
	DefaultName           = "default"
	DefaultClientURL      = "http://127.0.0.1:2379"
	DefaultPeerURL        = "http://127.0.0.1:2380"
	DefaultMaxTxnOps uint = 1024
	// DefaultAutoCompactionRetention keeps the last 10,000 revisions;
	// etcd compacts to that every 5 minutes (revision mode). Watchers
	// resume after a short disconnect, and a burst of writes (a crash loop,
	// churn) does not grow the database for an hour, as with the periodic
	// "1h" this replaced.
	DefaultAutoCompactionRetention = "10000"
)

// Config describes one embedded etcd member. Zero fields take defaults.
type Config struct {
	// Name of the member; DefaultName if empty.
	Name string
	// DataDir holds the WAL and the database. Required.
	DataDir string

	// ListenClientURLs default to DefaultClientURL; AdvertiseClientURLs
	// default to ListenClientURLs.
	ListenClientURLs, AdvertiseClientURLs []string
	// ListenPeerURLs default to DefaultPeerURL; AdvertisePeerURLs default
	// to ListenPeerURLs.
	ListenPeerURLs, AdvertisePeerURLs []string

	// InitialCluster is "name=peerURL,..."; by default this member alone
	// with its advertised peer URLs.
	InitialCluster string
	// InitialClusterToken tells clusters apart during bootstrap; etcd's
	// default if empty.
	InitialClusterToken string
	// ClusterState is "new" (default) or "existing" (joining after MemberAdd).
	ClusterState string

	// TickMs and ElectionMs are the raft heartbeat interval and election
	// timeout; etcd's defaults (100, 1000) if zero. Tests use 10 and 100.
	TickMs, ElectionMs uint
	// MaxTxnOps is the maximum number of operations in one transaction;
	// DefaultMaxTxnOps if zero.
	MaxTxnOps uint
	// QuotaBackendBytes caps the database size; etcd's default (2 GiB) if 0.
	QuotaBackendBytes int64
	// AutoCompactionRetention is a number of revisions to keep (revision
	// mode, checked every 5 minutes) or a duration ("1h", "30m": periodic
	// mode); DefaultAutoCompactionRetention if empty, "0" disables it.
	AutoCompactionRetention string
	// UnsafeNoFsync disables fsync. Only for tests: data is lost on a crash.
	UnsafeNoFsync bool

	// ClientTLS serves the client URLs (which must be https) over TLS;
	// PeerTLS does the same for the peer URLs, and is also this member's
	// client certificate towards its peers. Zero values: plain http.
	ClientTLS, PeerTLS TLSFiles

	// RootPassword, when set, makes the member require authentication:
	// Start creates etcd's root user with this password and enables
	// authentication if it is not enabled yet; if it is, the password must
	// be root's (ErrWrongRootPassword otherwise). Anonymous clients then
	// get nothing.
	RootPassword string

	// MinFreeSpace is the disk guard's low-water mark (diskguard.go): with
	// less free space under DataDir, the member raises etcd's NOSPACE
	// alarm and the whole cluster refuses writes until free space is back
	// above MinFreeSpace + DiskResumeMargin. DefaultMinFreeSpace if 0;
	// negative disables the guard (it then only disarms an alarm it raised
	// before).
	MinFreeSpace int64
	// DiskCheckInterval is how often the guard reads the free space;
	// DefaultDiskCheckInterval if 0.
	DiskCheckInterval time.Duration
	// NoSpaceKeyPrefix is where the guard records why it raised the alarm
	// (ExplainNoSpace reads it); DefaultNoSpaceKeyPrefix if empty.
	NoSpaceKeyPrefix string
	// Machine names this member's machine in that record and in
	// ExplainNoSpace's message (e.g. "3f2a1b4c/10.0.0.5"); the member
	// name if empty.
	Machine string

	// Logger receives etcd's own error-level logs (warnings and info are
	// dropped: etcd is chatty) and the disk guard's. Nil discards
	// everything.
	Logger *slog.Logger
}

// MinFreeBytes is the free space Start wants on the data dir's file system:
// etcd preallocates 64 MB for each log segment, and with less it fails with
// "failed to read WAL" or exits mid-write.
const MinFreeBytes = 128 << 20

// checkFreeSpace refuses to start etcd on a file system with less than min
// bytes free (for an unprivileged user), naming the numbers.
func checkFreeSpace(dir string, min uint64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return nil // not knowable: let etcd try
	}
	if free < min {
		return fmt.Errorf("only %d MB free on the file system of %s: etcd needs at least %d MB to write its log; free some space and start again (the data is kept)",
			free>>20, dir, min>>20)
	}
	return nil
}

// Server is a running embedded etcd member.
type Server struct {
	etcd       *embed.Etcd
	clientURLs []string
	peerURLs   []string
	quiet      *atomic.Bool
	closeOnce  sync.Once
	// stopGuard ends the disk guard; guardDone is closed once it has.
	stopGuard context.CancelFunc
	guardDone chan struct{}
	// guardLooks counts the disk guard's looks at the disk (for tests).
	guardLooks atomic.Int64
}

// Start starts a member and waits until it is ready to serve clients (it has
// joined a quorum), or ctx ends, in which case the member is stopped again.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.DataDir == "" {
		return nil, errors.New("etcdserver: start: DataDir is required")
	}
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	cfg.Dir = c.DataDir

	var err error
	if cfg.ListenClientUrls, err = parseURLs(c.ListenClientURLs, DefaultClientURL); err != nil {
		return nil, fmt.Errorf("etcdserver: start: listen client URLs: %w", err)
	}
	if cfg.AdvertiseClientUrls, err = parseURLs(c.AdvertiseClientURLs, ""); err != nil {
		return nil, fmt.Errorf("etcdserver: start: advertise client URLs: %w", err)
	}
	if len(cfg.AdvertiseClientUrls) == 0 {
		cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	}
	if cfg.ListenPeerUrls, err = parseURLs(c.ListenPeerURLs, DefaultPeerURL); err != nil {
		return nil, fmt.Errorf("etcdserver: start: listen peer URLs: %w", err)
	}
	if cfg.AdvertisePeerUrls, err = parseURLs(c.AdvertisePeerURLs, ""); err != nil {
		return nil, fmt.Errorf("etcdserver: start: advertise peer URLs: %w", err)
	}
	if len(cfg.AdvertisePeerUrls) == 0 {
		cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	}
	cfg.InitialCluster = c.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	if c.InitialClusterToken != "" {
		cfg.InitialClusterToken = c.InitialClusterToken
	}
	switch c.ClusterState {
	case "":
		cfg.ClusterState = embed.ClusterStateFlagNew
	case embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting:
		cfg.ClusterState = c.ClusterState
	default:
		return nil, fmt.Errorf("etcdserver: start: cluster state %q: expect %q or %q",
			c.ClusterState, embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting)
	}
	if c.TickMs != 0 {
		cfg.TickMs = c.TickMs
	}
	if c.ElectionMs != 0 {
		cfg.ElectionMs = c.ElectionMs
	}
	cfg.MaxTxnOps = c.MaxTxnOps
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.QuotaBackendBytes != 0 {
		cfg.QuotaBackendBytes = c.QuotaBackendBytes
	}
	cfg.AutoCompactionRetention = c.AutoCompactionRetention
	if cfg.AutoCompactionRetention == "" {
		cfg.AutoCompactionRetention = DefaultAutoCompactionRetention
	}
	cfg.AutoCompactionMode = embed.CompactorModeRevision
	if _, err := strconv.Atoi(cfg.AutoCompactionRetention); err != nil {
		cfg.AutoCompactionMode = embed.CompactorModePeriodic
	}
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	if c.RootPassword != "" {
		// clientv3 authenticates again for every stream it opens (each
		// watch, each KeepAliveOnce), and etcd checks the password with
		// bcrypt: 130 ms of CPU at the default cost on this class of
		// machine, so a lease renewal took that long. The root password
		// is the cluster token, 256 random bits: bcrypt's work factor
		// protects guessable human passwords, not this one, so the
		// minimum cost (about 2 ms) loses nothing.
		cfg.BcryptCost = uint(bcrypt.MinCost)
	}
	cfg.ClientTLSInfo = c.ClientTLS.info()
	cfg.PeerTLSInfo = c.PeerTLS.info()

	quiet := new(atomic.Bool)
	cfg.LogLevel = "error"
	lg := zap.NewNop()
	if c.Logger != nil {
		lg = zap.New(&slogCore{lg: c.Logger.With("component", "etcd"), quiet: quiet, dataDir: c.DataDir})
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)

	if err := checkFreeSpace(c.DataDir, MinFreeBytes); err != nil {
		return nil, fmt.Errorf("etcdserver: start %s: %w", cfg.Name, err)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: start %s: %w", cfg.Name, err)
	}
	s := &Server{etcd: e, quiet: quiet}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		s.Close()
		if err == nil {
			err = errors.New("stopped before it was ready")
		}
		return nil, fmt.Errorf("etcdserver: start %s: %w", cfg.Name, err)
	case <-e.Server.StopNotify():
		s.Close()
		return nil, fmt.Errorf("etcdserver: start %s: stopped before it was ready", cfg.Name)
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("etcdserver: start %s: waiting until ready: %w", cfg.Name, ctx.Err())
	}

	if c.RootPassword != "" {
		if err := s.ensureAuth(ctx, c.RootPassword); err != nil {
			s.Close()
			return nil, fmt.Errorf("etcdserver: start %s: %w", cfg.Name, err)
		}
	}

	s.clientURLs = realURLs(cfg.AdvertiseClientUrls, listenerAddrs(e.Clients))
	peerLns := make([]net.Listener, 0, len(e.Peers))
	for _, p := range e.Peers {
		peerLns = append(peerLns, p.Listener)
	}
	s.peerURLs = realURLs(cfg.AdvertisePeerUrls, listenerAddrs(peerLns))

	// The guard's first look happens here: a disk already nearly full
	// stops writes before Start returns.
	gctx, stop := context.WithCancel(context.Background())
	s.stopGuard, s.guardDone = stop, make(chan struct{})
	if c.Machine == "" {
		c.Machine = cfg.Name
	}
	newDiskGuard(s, c, cfg.Name).start(gctx, s.guardDone)
	return s, nil
}

// ClientURLs returns the advertised client URLs, with the real port in place
// of port 0.
func (s *Server) ClientURLs() []string { return append([]string(nil), s.clientURLs...) }

// PeerURLs returns the advertised peer URLs, with the real port in place of
// port 0.
func (s *Server) PeerURLs() []string { return append([]string(nil), s.peerURLs...) }

// Err reports a fatal error of the running member. etcd closes the channel
// once the member has stopped.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member and waits for it. Open client streams (watches,
// keepalives) hold it up to about 5 s, so close local clients first. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		// etcd logs harmless errors ("use of closed network connection")
		// while it shuts down.
		s.quiet.Store(true)
		if s.stopGuard != nil {
			s.stopGuard()
			<-s.guardDone
		}
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
	})
	return nil
}

func parseURLs(ss []string, def string) ([]url.URL, error) {
	if len(ss) == 0 {
		if def == "" {
			return nil, nil
		}
		ss = []string{def}
	}
	us := make([]url.URL, 0, len(ss))
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%q: expect scheme://host:port", s)
		}
		us = append(us, *u)
	}
	return us, nil
}

func listenerAddrs(lns []net.Listener) []net.Addr {
	addrs := make([]net.Addr, 0, len(lns))
	for _, ln := range lns {
		if ln != nil {
			addrs = append(addrs, ln.Addr())
		}
	}
	return addrs
}

// realURLs replaces port 0 in advertised URLs with the port of the listener
// at the same index (or the first listener).
func realURLs(adv []url.URL, addrs []net.Addr) []string {
	out := make([]string, 0, len(adv))
	for i, u := range adv {
		if u.Port() == "0" && len(addrs) > 0 {
			a := addrs[0]
			if i < len(addrs) {
				a = addrs[i]
			}
			if tcp, ok := a.(*net.TCPAddr); ok {
				u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(tcp.Port))
			}
		}
		out = append(out, u.String())
	}
	return out
}

// TLSFiles are the PEM files of one side (client or peer) of a member.
type TLSFiles struct {
	// CertFile and KeyFile are the member's certificate and key.
	CertFile, KeyFile string
	// CAFile, when set, makes the member require certificates signed by it
	// from the other side (client certificate authentication).
	CAFile string
}

func (f TLSFiles) info() transport.TLSInfo {
	return transport.TLSInfo{
		CertFile:       f.CertFile,
		KeyFile:        f.KeyFile,
		TrustedCAFile:  f.CAFile,
		ClientCertAuth: f.CAFile != "",
	}
}
