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
	"github.com/fleetd/fleet/internal/rolloutd"
	"github.com/fleetd/fleet/internal/runner"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/timerd"
	"github.com/fleetd/fleet/internal/version"
	"github.com/fleetd/fleet/internal/web"
)

// Run starts fleetd with cfg and blocks until ctx ends or a component fails.
//
// It builds fleetd in dependency order: etcd (embedded or not), the store,
// the runner, the machine's presence, the API, the registry, the agent and
// the engine; each is handed the ones it uses when it is constructed. The
// long-running ones then run in one errgroup (components): the first that
// fails is logged, shuts fleetd down, and is the error Run returns.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	return run(ctx, cfg, log, nil)
}

// component is a long-running part of fleetd, for run's extra (tests).
type component struct {
	name string
	run  func(ctx context.Context) error
}

// run is Run; the extra components (tests) run along with fleetd's own.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, extra []component) error {
	started := time.Now() // OnBootSec= counts from here (timerd)
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
		warnInsecureEtcd(log)
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

	// From here on fleetd's long-running parts run in comps; comps.ctx
	// ends when fleetd shuts down (ctx ended, or a component failed), and
	// bounds the waits for etcd below.
	comps := newComponents(ctx, log)
	defer comps.shutdown()
	// abort ends a start that failed: the first component failure (the
	// embedded etcd stopped, say) is the cause, if any.
	abort := func(err error) error {
		comps.shutdown()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		comps.wait(wctx)
		if cerr := comps.err(); cerr != nil {
			return cerr
		}
		return err
	}
	if cfg.EtcdInsecure {
		comps.Go("etcd_insecure warning", func(ctx context.Context) error {
			return repeat(ctx, time.Minute, func() { warnInsecureEtcd(log) })
		})
	}
	if etcdSrv != nil {
		// The embedded member stopped on its own (a full disk, a corrupt
		// database): say so and exit, rather than serve without it.
		comps.Go("embedded etcd", func(ctx context.Context) error {
			select {
			case err, ok := <-etcdSrv.Err():
				if ok && err != nil {
					return fmt.Errorf("fleetd: the embedded etcd stopped: %w (data dir %s)", err, filepath.Join(cfg.DataDir, "etcd"))
				}
			case <-ctx.Done():
			}
			return nil
		})
	}

	mx := metrics.New()
	kc, err := newEtcdClient(comps.ctx, etcdCredentials(cfg, endpoints, token), cfg.EtcdKeyPrefix, mx.EtcdDialOptions(), log)
	if err != nil {
		return abort(err)
	}
	defer kc.Close()
	st := store.New(kc, cfg.EtcdKeyPrefix)
	// Every retry log names the etcd it cannot reach.
	elog := log.With("etcd", strings.Join(endpoints, ","))
	admin, err := adminToken(comps.ctx, st, cfg.DataDir, cfg.MachineID, elog)
	if err != nil {
		return abort(err)
	}
	if sec.peerToken == "" {
		// Other fleetd accept this machine's admin token: status and
		// journal proxying authenticate with it.
		sec.peerToken = admin
	}

	hostname, _ := os.Hostname()
	jr, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{Hostname: hostname})
	if err != nil {
		return abort(fmt.Errorf("fleetd: journal: %w", err))
	}
	listeners, apiURL, err := listen(cfg, log)
	if err != nil {
		return abort(err)
	}
	listeners, apiURL = sec.wrap(listeners, apiURL)
	v2, err := listenEtcdV2(cfg)
	if err != nil {
		closeAll(listeners)
		return abort(err)
	}
	// fleetctl (kv, ...) run by a unit reaches this fleetd;
	// FLEET_PUBLIC_IP is the address [X-Service] publishes (CoreOS's
	// COREOS_PUBLIC_IPV4), e.g. for a balancer's --listen; etcdctl v2
	// reaches the etcd v2 API (docs/discovery.md).
	unitEnv := []string{"FLEETCTL_ENDPOINT=" + sec.unitEndpoint(listeners, apiURL), "FLEET_PUBLIC_IP=" + cfg.PublicIP}
	var privEnv []string
	if v2 != nil {
		unitEnv = append(unitEnv, v2.unitEnv()...)
		privEnv = unitCredentialEnv(admin)
	}
	rn, err := execrunner.New(execrunner.Options{
		Journal:   jr,
		UnitsDir:  cfg.UnitsDirectory,
		Hostname:  hostname,
		MachineID: cfg.MachineID,
		BootID:    bootID(),
		Logger:    log.With("component", "runner"),
		Env:       unitEnv,
		// Only units running as fleetd's own user may write.
		PrivilegedEnv: privEnv,
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
		v2.close()
		return abort(fmt.Errorf("fleetd: runner: %w", err))
	}
	machine := fleet.Machine{
		ID:            cfg.MachineID,
		PublicIP:      cfg.PublicIP,
		Metadata:      cfg.Metadata,
		Version:       version.Version,
		APIURL:        apiURL,
		DisableEngine: cfg.DisableEngine,
		Capacity:      machineCapacity(cfg.Capacity),
	}

	pres := &presence{
		store: st, machine: machine, ttl: cfg.AgentTTL, log: elog.With("component", "presence"),
		leaseFile: filepath.Join(cfg.DataDir, leaseFileName), now: time.Now,
	}
	// The previous run's lease is gone (or surely expired while fleetd was
	// away): its units are being placed elsewhere. The agent does not run
	// yet: only the fenced units stop here; its first reconcile keeps or
	// stops the rest by the schedule.
	if err := pres.register(comps.ctx, stopFencedUnits(rn, log)); err != nil {
		closeAll(listeners)
		v2.close()
		return abort(err)
	}

	local := &localUnits{machineID: cfg.MachineID, runner: rn, journal: jr, hostname: hostname}
	mx.CollectRunner(rn)
	mx.CollectEtcd(st.KV(), cfg.MachineID, st.Leader)
	mx.CollectRollouts(st)
	// The API accepts every admin token registered in etcd (each fleetd's
	// <data_dir>/admin-token).
	sec.useTokenLookup(newTokenLookup(st, log.With("component", "api")))
	stateView := st.NewStateView(comps.ctx)
	defer stateView.Close()
	apiCfg := api.Config{
		Store:          st,
		States:         stateView,
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
		// etcd refuses writes for lack of space: say where and why.
		NoSpace: func(ctx context.Context) string {
			return etcdserver.ExplainNoSpace(ctx, kc, noSpaceKeyPrefix(cfg))
		},
	}
	// The dashboard is served by the API (under its middleware) and reads
	// journals through the API: it is handed an API of its own, without
	// the mounts (api.Server keeps no state beyond its Config, so both
	// answer alike), rather than a reference to the one serving it.
	dashboard := web.New(web.Config{
		Store:     st,
		API:       api.New(apiCfg).Handler(),
		MachineID: cfg.MachineID,
		Version:   version.Version,
		Logger:    log.With("component", "web"),
		// nil: the dashboard's default (everyone reads, loopback acts).
		Authorizer: sec.authorizer(),
		Hosts:      &sec.hosts,
		Sessions:   sec.sessions,
	})
	apiCfg.Mount = map[string]http.Handler{"/ui/": dashboard, "GET /metrics": mx.Handler()}
	apiSrv := api.New(apiCfg)
	httpSrv := &http.Server{Handler: mx.Middleware(apiSrv.Handler()), ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections are closed after a while, so that
		// clients that never close theirs do not pile up fds.
		IdleTimeout: 2 * time.Minute,
		// TLS handshake failures (scanners, wrong certificates) are noise.
		ErrorLog: slog.NewLogLogger(log.With("component", "api").Handler(), slog.LevelDebug)}

	reg := registry.New(registry.Config{
		Client: st.KV(), MachineID: cfg.MachineID, PublicIP: cfg.PublicIP, Hostname: hostname,
		Lease: pres.lease, Logger: log,
		// Balancers drop an endpoint before its unit is stopped.
		DeregisterDelay: registry.DefaultDeregisterDelay,
		// A failing check is recorded (on the machine's lease) for the
		// rollout driver, which names it when an instance is not healthy.
		OnCheck: func(ctx context.Context, unit string, svc fleet.Service, err error) {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var werr error
			if err == nil {
				werr = st.DeleteCheck(cctx, cfg.MachineID, unit)
			} else if lease := pres.lease(); lease != 0 {
				werr = st.PutCheck(cctx, lease, cfg.MachineID, unit, fmt.Sprintf("%s:%d: %v", svc.Name, svc.Port, err))
			}
			if werr != nil && ctx.Err() == nil {
				log.Debug("recording a health check result", "unit", unit, "err", werr)
			}
		},
	})
	var dw *docker.Watcher
	if _, err := os.Stat(docker.DefaultSocket); err == nil && cfg.DockerRegistration {
		dw = docker.New(docker.Config{
			Sink:   func(eps []registry.Endpoint) { reg.SetExternal("docker", eps) },
			Logger: log,
		})
	}
	// The agent says when its units may have changed (OnChange must not
	// block); the "registry units" component hands them to the registry.
	unitsChanged := make(chan struct{}, 1)
	ag := agent.New(agent.Config{
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
		OnChange: func() {
			select {
			case unitsChanged <- struct{}{}:
			default: // one pending is enough: the registry reads the latest
			}
		},
	})
	var eng *engine.Engine
	if !cfg.DisableEngine {
		eng = engine.New(engine.Config{
			Store: st, MachineID: cfg.MachineID,
			LeaseTTL: cfg.AgentTTL, Interval: cfg.EngineReconcileInterval, Logger: log,
			Strategy: cfg.PlacementStrategy,
			OnReconcile: func(s engine.Stats) {
				mx.ObserveReconcile(metrics.Reconcile{
					Units: s.Units, Machines: s.Machines, Put: s.Put, Deleted: s.Deleted,
					Unplaced: s.Unplaced, Duration: s.Duration,
				})
			},
		})
		// The leader drives rolling updates (fleetctl rollout).
		eng.SetWhileLeading(rolloutd.New(rolloutd.Config{Store: st, ServicesPrefix: reg.Prefix(), Logger: log, Surge: eng.SurgeMachines}).Run)
	}

	comps.Go("alive", pres.alive)
	// The machine's lease is gone or about to expire unrenewed: the agent
	// stops the units that must not outlive it (StopOnDisconnect).
	comps.Go("presence", func(ctx context.Context) error { return pres.run(ctx, ag.LeaseLost) })
	comps.Go("lease heartbeat", func(ctx context.Context) error { return pres.heartbeat(ctx, ag.LeaseLost) })
	for _, l := range listeners {
		log.Info("API listening", "addr", l.Addr().String())
		comps.Go("API on "+l.Addr().String(), func(context.Context) error {
			// Shutdown, below, ends it.
			if err := httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("fleetd: API on %s: %w", l.Addr(), err)
			}
			return nil
		})
	}
	if v2 != nil {
		v2.serve(comps.ctx, st, sec.adminToken, log)
		log.Info("etcd v2 API listening", "addr", v2.l.Addr().String(), "url", v2.url)
		comps.Go("etcd v2 API on "+v2.l.Addr().String(), v2.run)
	}
	comps.Go("registry", reg.Run)
	if dw != nil {
		comps.Go("docker registry", dw.Run)
	}
	comps.Go("registry units", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-unitsChanged:
				reg.SetUnits(registryUnits(ag.Units(), rn.States(), rn.UnitOptions))
			}
		}
	})
	comps.Go("agent", ag.Run)
	// .timer units active here start the units they activate (timerd).
	comps.Go("timers", timerd.New(timerd.Config{Store: st, Runner: rn, MachineID: cfg.MachineID, Booted: started, Logger: log, Now: time.Now}).Run)
	if eng != nil {
		comps.Go("engine", eng.Run)
	}
	for _, c := range extra {
		comps.Go(c.name, c.run)
	}
	log.Info("fleetd started", "machine", cfg.MachineID, "version", version.Version, "api", apiURL)

	<-comps.ctx.Done()
	log.Info("fleetd shutting down")
	comps.shutdown()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer scancel()
	_ = httpSrv.Shutdown(sctx)
	v2.shutdown(sctx)
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
	if !comps.wait(sctx) {
		log.Error("some components did not stop within the stop timeout; exiting without them", "timeout", stopTimeout)
	}
	_ = rn.Close(sctx)
	return comps.err()
}

// stopFencedUnits stops, straight through the runner, the units that opted
// into fencing ([X-Fleet] StopOnDisconnect=true): what a lease found gone
// at start-up does, before the agent runs.
func stopFencedUnits(rn *execrunner.Runner, log *slog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		for name := range rn.States() {
			if opts, _ := rn.UnitOptions(name); agent.StopOnDisconnect(opts) {
				if err := rn.Stop(ctx, name); err != nil {
					log.Warn("stopping a StopOnDisconnect unit", "unit", name, "err", err)
				}
			}
		}
	}
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
