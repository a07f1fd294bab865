// Package daemon wires fleetd together: embedded or external etcd, the
// store, the machine's presence, the runner and journal, the agent, the
// engine, the service registry (and its Docker watcher) and the API
// listeners. It is the only package that knows them all.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetd/fleet/internal/agent"
	"github.com/fleetd/fleet/internal/api"
	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/engine"
	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/metrics"
	"github.com/fleetd/fleet/internal/registry"
	"github.com/fleetd/fleet/internal/registry/docker"
	"github.com/fleetd/fleet/internal/runner"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/version"
	"github.com/fleetd/fleet/internal/web"
)

// Run starts fleetd with cfg and blocks until ctx ends or a component fails
// in a way it cannot recover from.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	sec, err := setupSecurity(cfg, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("fleetd: data dir: %w", err)
	}
	token, err := clusterToken(cfg, log)
	if err != nil {
		return err
	}
	if cfg.EtcdInsecure {
		go warnInsecureEtcd(ctx, log, time.Minute)
	}
	endpoints := cfg.EtcdServers
	var etcdSrv *etcdserver.Server
	if len(endpoints) == 0 {
		srv, err := startEmbeddedEtcd(ctx, cfg, token, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		etcdSrv = srv
		endpoints = srv.ClientURLs()
		log.Info("embedded etcd ready", "client_urls", strings.Join(endpoints, ","), "authentication", token != "")
	}
	mx := metrics.New()
	cli, err := newEtcdClient(ctx, etcdCredentials(cfg, endpoints, token), cfg.EtcdKeyPrefix, mx.EtcdDialOptions(), log)
	if err != nil {
		return err
	}
	defer cli.Close()
	st := store.New(etcdkv.New(cli), cfg.EtcdKeyPrefix)
	// Every retry log names the etcd it cannot reach.
	elog := log.With("etcd", strings.Join(endpoints, ","))
	admin, err := adminToken(ctx, st, cfg.DataDir, cfg.MachineID, elog)
	if err != nil {
		return err
	}
	if sec.peerToken == "" {
		// Other fleetd accept this machine's admin token: status and
		// journal proxying authenticate with it.
		sec.peerToken = admin
	}

	hostname, _ := os.Hostname()
	jr, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{Hostname: hostname})
	if err != nil {
		return fmt.Errorf("fleetd: journal: %w", err)
	}
	listeners, apiURL, err := listen(cfg, log)
	if err != nil {
		return err
	}
	listeners, apiURL = sec.wrap(listeners, apiURL)
	rn, err := execrunner.New(execrunner.Options{
		Journal:   jr,
		UnitsDir:  cfg.UnitsDirectory,
		Hostname:  hostname,
		MachineID: cfg.MachineID,
		BootID:    bootID(),
		Logger:    log.With("component", "runner"),
		// fleetctl (kv, ...) run by a unit reaches this fleetd;
		// FLEET_PUBLIC_IP is the address [X-Service] publishes (CoreOS's
		// COREOS_PUBLIC_IPV4), e.g. for a balancer's --listen.
		Env: []string{"FLEETCTL_ENDPOINT=" + sec.unitEndpoint(listeners, apiURL), "FLEET_PUBLIC_IP=" + cfg.PublicIP},
		// Units outlive fleetd (a restart or an upgrade): main processes
		// run under a shim (fleet-shim, or `fleetd shim`), and a
		// restarted fleetd adopts them.
		StateDir: filepath.Join(cfg.DataDir, "runner"),
		Shim:     shimCommand(),
		// The shims' heartbeat says "fleetd is alive", not "etcd
		// answers": units outlive an etcd outage, and stop when fleetd
		// itself is gone for agent_ttl (presence.alive).
		Heartbeat:    filepath.Join(cfg.DataDir, aliveFileName),
		HeartbeatTTL: cfg.AgentTTL - expiryGuard(cfg.AgentTTL),
	})
	if err != nil {
		closeAll(listeners)
		return fmt.Errorf("fleetd: runner: %w", err)
	}
	machine := fleet.Machine{
		ID:            cfg.MachineID,
		PublicIP:      cfg.PublicIP,
		Metadata:      cfg.Metadata,
		Version:       version.Version,
		APIURL:        apiURL,
		DisableEngine: cfg.DisableEngine,
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	if etcdSrv != nil {
		// The embedded member stopped on its own (a full disk, a corrupt
		// database): say so and exit, rather than serve without it.
		go func() {
			select {
			case err, ok := <-etcdSrv.Err():
				if ok && err != nil && ctx.Err() == nil {
					errc <- fmt.Errorf("fleetd: the embedded etcd stopped: %w (data dir %s)", err, filepath.Join(cfg.DataDir, "etcd"))
				}
			case <-ctx.Done():
			}
		}()
	}

	var agRef atomic.Pointer[agent.Agent]
	pres := &presence{
		store: st, machine: machine, ttl: cfg.AgentTTL, log: elog.With("component", "presence"),
		leaseFile: filepath.Join(cfg.DataDir, leaseFileName),
		// The machine's lease is gone (or surely expired while fleetd was
		// away): its units are being placed elsewhere; stop them first.
		stopUnits: func(ctx context.Context, wait bool) {
			if ag := agRef.Load(); ag != nil {
				ag.LeaseLost(ctx)
				return
			}
			if wait {
				// Before the agent runs: only the fenced units stop; the
				// agent's first reconcile keeps or stops the rest by the
				// schedule.
				for name := range rn.States() {
					if opts, _ := rn.UnitOptions(name); agent.StopOnDisconnect(opts) {
						if err := rn.Stop(ctx, name); err != nil {
							log.Warn("stopping a StopOnDisconnect unit", "unit", name, "err", err)
						}
					}
				}
			}
		},
	}
	if err := pres.register(ctx); err != nil {
		closeAll(listeners)
		return err
	}
	wg.Go(func() { pres.alive(ctx) })
	wg.Go(func() { pres.run(ctx) })
	wg.Go(func() { pres.heartbeat(ctx) })

	local := &localUnits{machineID: cfg.MachineID, runner: rn, journal: jr, hostname: hostname}
	mx.CollectRunner(rn)
	mx.CollectEtcd(st.KV(), cfg.MachineID, st.Leader)
	var apiHandler http.Handler // set below; the dashboard reads journals through it
	// The API accepts every admin token registered in etcd (each fleetd's
	// <data_dir>/admin-token).
	sec.useTokenLookup(newTokenLookup(st, log.With("component", "api")))
	dashboard := web.New(web.Config{
		Store:     st,
		API:       http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHandler.ServeHTTP(w, r) }),
		MachineID: cfg.MachineID,
		Version:   version.Version,
		Logger:    log.With("component", "web"),
		// nil: the dashboard's default (everyone reads, loopback acts).
		Authorizer: sec.authorizer(),
		Hosts:      &sec.hosts,
		Sessions:   sec.sessions,
	})
	apiSrv := api.New(api.Config{
		Store:          st,
		Local:          local,
		MachineID:      cfg.MachineID,
		Version:        version.Version,
		TokenLimit:     cfg.TokenLimit,
		Logger:         log.With("component", "api"),
		HTTPClient:     sec.peerClient,
		Auth:           sec.policy,
		PeerToken:      sec.peerToken,
		CredentialHint: sec.hint,
		Hosts:          &sec.hosts,
		PublicPaths:    []string{auth.LoginPath, "/ui/static/"},
		Sessions:       sec.sessions,
		// `fleetctl dashboard` URLs open this fleetd's TCP address.
		DashboardURL: apiURL,
		Mount:        map[string]http.Handler{"/ui/": dashboard, "GET /metrics": mx.Handler()},
		// etcd refuses writes for lack of space: say where and why.
		NoSpace: func(ctx context.Context) string {
			return etcdserver.ExplainNoSpace(ctx, cli, noSpaceKeyPrefix(cfg))
		},
	})
	apiHandler = apiSrv.Handler()
	httpSrv := &http.Server{Handler: mx.Middleware(apiSrv.Handler()), ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections are closed after a while, so that
		// clients that never close theirs do not pile up fds.
		IdleTimeout: 2 * time.Minute,
		// TLS handshake failures (scanners, wrong certificates) are noise.
		ErrorLog: slog.NewLogLogger(log.With("component", "api").Handler(), slog.LevelDebug)}
	for _, l := range listeners {
		log.Info("API listening", "addr", l.Addr().String())
		wg.Go(func() {
			if err := httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("fleetd: API on %s: %w", l.Addr(), err)
			}
		})
	}

	reg := registry.New(registry.Config{
		Client: st.KV(), MachineID: cfg.MachineID, PublicIP: cfg.PublicIP, Hostname: hostname,
		Lease: pres.lease, Logger: log,
		// Balancers drop an endpoint before its unit is stopped.
		DeregisterDelay: registry.DefaultDeregisterDelay,
	})
	wg.Go(func() { _ = reg.Run(ctx) })
	if _, err := os.Stat(docker.DefaultSocket); err == nil && cfg.DockerRegistration {
		dw := docker.New(docker.Config{
			Sink:   func(eps []registry.Endpoint) { reg.SetExternal("docker", eps) },
			Logger: log,
		})
		wg.Go(func() { _ = dw.Run(ctx) })
	}

	var ag *agent.Agent
	ag = agent.New(agent.Config{
		Store: st, Runner: mx.InstrumentRunner(rn), MachineID: cfg.MachineID,
		Lease: pres.lease, Logger: log,
		BeforeStop: func(ctx context.Context, unit string) {
			// Bounded: an unreachable etcd must not hold up the stop.
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := reg.Deregister(dctx, unit); err != nil {
				log.Warn("deregistering endpoints before stop", "unit", unit, "err", err)
			}
		},
		OnChange: func() { reg.SetUnits(registryUnits(ag.Units(), rn.States(), rn.UnitOptions)) },
	})
	agRef.Store(ag)
	wg.Go(func() { _ = ag.Run(ctx) })
	if !cfg.DisableEngine {
		eng := engine.New(engine.Config{
			Store: st, MachineID: cfg.MachineID,
			LeaseTTL: cfg.AgentTTL, Interval: cfg.EngineReconcileInterval, Logger: log,
			OnReconcile: func(s engine.Stats) {
				mx.ObserveReconcile(metrics.Reconcile{
					Units: s.Units, Machines: s.Machines, Put: s.Put, Deleted: s.Deleted,
					Unplaced: s.Unplaced, Duration: s.Duration,
				})
			},
		})
		wg.Go(func() { _ = eng.Run(ctx) })
	}
	log.Info("fleetd started", "machine", cfg.MachineID, "version", version.Version, "api", apiURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("fleetd shutting down")
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer scancel()
	_ = httpSrv.Shutdown(sctx)
	if cfg.StopUnitsOnExit {
		// fleet's behaviour: the units stop and the machine leaves at once.
		dctx, dcancel := context.WithTimeout(sctx, 3*time.Second)
		if err := reg.DeregisterAll(dctx); err != nil {
			log.Warn("deregistering endpoints", "err", err)
		}
		dcancel()
		if err := rn.StopAll(sctx); err != nil {
			log.Warn("stopping units", "err", err)
		}
		pctx, pcancel := context.WithTimeout(sctx, 3*time.Second)
		pres.close(pctx)
		pcancel()
	} else {
		// Units keep running and the lease is left to expire: a fleetd
		// restarted within agent_ttl takes both over and nothing moves;
		// otherwise the units move elsewhere and their shims stop them
		// here (the heartbeat goes stale).
		log.Info("leaving units running (stop_units_on_exit=false); the machine's lease expires in agent_ttl unless fleetd is back", "agent_ttl", cfg.AgentTTL)
		pres.release()
	}
	// SIGTERM must end fleetd within its stop timeout even when a
	// component is stuck in a call to an etcd that is gone (a Campaign or
	// Resign blocked in gRPC): wait for them until sctx ends, no longer.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		log.Error("some components did not stop within the stop timeout; exiting without them", "timeout", stopTimeout)
	}
	_ = rn.Close(sctx)
	return runErr
}

// stopTimeout bounds fleetd's shutdown after SIGTERM.
const stopTimeout = 30 * time.Second

func startEmbeddedEtcd(ctx context.Context, cfg config.Config, token string, log *slog.Logger) (*etcdserver.Server, error) {
	name := cfg.EtcdName
	if name == "" {
		name = fleet.ShortMachineID(cfg.MachineID)
	}
	clientTLS, peerTLS, err := embeddedTLS(cfg, token)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(cfg.DataDir, "etcd")
	// etcd keeps the whole cluster state here: owner only, whatever the
	// umask or an older fleetd left.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("fleetd: embedded etcd: %w", err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("fleetd: embedded etcd: %w", err)
	}
	minFree := cfg.EtcdMinFreeSpace
	if minFree == 0 {
		minFree = -1 // etcd_min_free_space=0: no disk guard
	}
	machine := fleet.ShortMachineID(cfg.MachineID) + "/" + cfg.PublicIP
	if host, err := os.Hostname(); err == nil && host != "" {
		machine += " (" + host + ")"
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(sctx, etcdserver.Config{
		Name:             name,
		DataDir:          dataDir,
		ListenClientURLs: cfg.EtcdListenClient,
		ListenPeerURLs:   cfg.EtcdListenPeer,
		InitialCluster:   cfg.EtcdInitialCluster,
		ClusterState:     cfg.EtcdInitialClusterState,
		Logger:           log.With("component", "etcd"),
		ClientTLS:        clientTLS,
		PeerTLS:          peerTLS,
		RootPassword:     token,
		// Below etcd_min_free_space on the data dir's file system, etcd
		// refuses writes (the API answers 507, noSpaceKeyPrefix).
		MinFreeSpace:     minFree,
		NoSpaceKeyPrefix: noSpaceKeyPrefix(cfg),
		Machine:          machine,
	})
	if errors.Is(err, etcdserver.ErrWrongRootPassword) {
		return nil, fmt.Errorf("fleetd: embedded etcd in %s: %w; give the token it was created with (%s)", dataDir, err, tokenFlagName(cfg))
	}
	if err != nil {
		return nil, fmt.Errorf("fleetd: embedded etcd: %w", err)
	}
	return srv, nil
}

// noSpaceKeyPrefix is where embedded etcd members record why they refuse
// writes (a nearly full disk), under fleet's prefix so that the kv API
// leaves it alone.
func noSpaceKeyPrefix(cfg config.Config) string { return cfg.EtcdKeyPrefix + "etcd/nospace/" }

// listen opens every API address. The first TCP listener gives the URL other
// machines use to reach this one. Unix sockets are for root and group
// fleet (SocketGroup) only, whatever the umask (listenUnix).
func listen(cfg config.Config, log *slog.Logger) ([]net.Listener, string, error) {
	var ls []net.Listener
	apiURL := ""
	for _, addr := range cfg.APIAddr {
		var l net.Listener
		var err error
		if path, ok := strings.CutPrefix(addr, "unix://"); ok {
			l, err = listenUnix(path, SocketGroup, log)
		} else {
			l, err = net.Listen("tcp", addr)
			if err == nil && apiURL == "" {
				apiURL = advertiseURL(l.Addr().(*net.TCPAddr), cfg.PublicIP)
			}
		}
		if err != nil {
			closeAll(ls)
			return nil, "", fmt.Errorf("fleetd: api_addr %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, "", errors.New("fleetd: api_addr: no address to listen on")
	}
	return ls, apiURL, nil
}

func advertiseURL(a *net.TCPAddr, publicIP string) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = publicIP
		if host == "" {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
}

// localUnits implements api.Local over this machine's runner and journal.
type localUnits struct {
	machineID string
	runner    *execrunner.Runner
	journal   *journal.Journal
	hostname  string
}

func (l *localUnits) MachineID() string { return l.machineID }

func (l *localUnits) UnitStatus(ctx context.Context, name string) (string, error) {
	st, err := l.runner.Status(name)
	if err != nil {
		return "", err
	}
	var recent []string
	if entries, err := l.journal.Tail(name, 10); err == nil {
		for _, e := range entries {
			if s, err := journal.Format(e, "short"); err == nil {
				recent = append(recent, s)
			}
		}
	}
	return runner.FormatStatus(st, time.Now(), l.hostname, recent), nil
}

func (l *localUnits) Journal(ctx context.Context, name string, lines int, follow bool, output string, w io.Writer) error {
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	write := func(e journal.Entry) error {
		s, err := journal.Format(e, output)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(s + "\n")); err != nil {
			return err
		}
		return nil
	}
	if !follow {
		entries, err := l.journal.Tail(name, lines)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := write(e); err != nil {
				return err
			}
		}
		flush()
		return nil
	}
	ch, err := l.journal.Follow(ctx, name, lines)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			if err := write(e); err != nil {
				return err
			}
			// Drain what is already queued before flushing.
			for more := true; more; {
				select {
				case e, ok := <-ch:
					if !ok {
						flush()
						return nil
					}
					if err := write(e); err != nil {
						return err
					}
				default:
					more = false
				}
			}
			flush()
		}
	}
}

// localEndpoint is the API URL units on this machine use: the advertised
// URL, else the first unix socket.
func localEndpoint(ls []net.Listener, apiURL string) string {
	if apiURL != "" {
		return apiURL
	}
	for _, l := range ls {
		if a, ok := l.Addr().(*net.UnixAddr); ok {
			return "unix://" + a.Name
		}
	}
	return ""
}

// registryUnits joins the agent's loaded units with the runner's states.
// Units the agent adopted from an earlier fleetd carry no options: the
// runner's are used then.
func registryUnits(units []runner.Unit, states map[string]runner.State, options func(string) ([]fleet.UnitOption, bool)) []registry.Unit {
	out := make([]registry.Unit, 0, len(units))
	for _, u := range units {
		st := states[u.Name]
		if len(u.Options) == 0 {
			u.Options, _ = options(u.Name)
		}
		out = append(out, registry.Unit{
			Name: u.Name, Options: u.Options,
			Active: st.ActiveState == "active", Since: st.Since,
		})
	}
	return out
}
