// Package daemon wires fleetd together: embedded or external etcd, the
// store, the machine's presence, the runner and journal, the agent, the
// engine and the API listeners. It is the only package that knows them all.
package daemon

import (
	"context"
	"crypto/tls"
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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/agent"
	"github.com/fleetd/fleet/internal/api"
	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/engine"
	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/version"
)

// Run starts fleetd with cfg and blocks until ctx ends or a component fails
// in a way it cannot recover from.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("fleetd: data dir: %w", err)
	}
	endpoints := cfg.EtcdServers
	if len(endpoints) == 0 {
		srv, err := startEmbeddedEtcd(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		endpoints = srv.ClientURLs()
		log.Info("embedded etcd ready", "client_urls", strings.Join(endpoints, ","))
	}
	tlsCfg, err := etcdTLS(cfg)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         tlsCfg,
		Username:    cfg.EtcdUsername,
		Password:    cfg.EtcdPassword,
		Logger:      zap.NewNop(), // its retries are reported by our own callers
	})
	if err != nil {
		return fmt.Errorf("fleetd: etcd client for %v: %w", endpoints, err)
	}
	defer cli.Close()
	st := store.New(cli, cfg.EtcdKeyPrefix)

	hostname, _ := os.Hostname()
	jr, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{Hostname: hostname})
	if err != nil {
		return fmt.Errorf("fleetd: journal: %w", err)
	}
	rn, err := execrunner.New(execrunner.Options{
		Journal:   jr,
		UnitsDir:  cfg.UnitsDirectory,
		Hostname:  hostname,
		MachineID: cfg.MachineID,
		BootID:    bootID(),
		Logger:    log.With("component", "runner"),
	})
	if err != nil {
		return fmt.Errorf("fleetd: runner: %w", err)
	}

	listeners, apiURL, err := listen(cfg)
	if err != nil {
		return err
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

	pres := &presence{store: st, machine: machine, ttl: cfg.AgentTTL, log: log.With("component", "presence")}
	if err := pres.register(ctx); err != nil {
		closeAll(listeners)
		return err
	}
	wg.Go(func() { pres.run(ctx) })

	local := &localUnits{machineID: cfg.MachineID, runner: rn, journal: jr, hostname: hostname}
	apiSrv := api.New(api.Config{
		Store:      st,
		Local:      local,
		MachineID:  cfg.MachineID,
		Version:    version.Version,
		TokenLimit: cfg.TokenLimit,
		Logger:     log.With("component", "api"),
		HTTPClient: &http.Client{},
	})
	httpSrv := &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	for _, l := range listeners {
		log.Info("API listening", "addr", l.Addr().String())
		wg.Go(func() {
			if err := httpSrv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("fleetd: API on %s: %w", l.Addr(), err)
			}
		})
	}

	ag := agent.New(agent.Config{
		Store: st, Runner: rn, MachineID: cfg.MachineID,
		Lease: pres.lease, Logger: log,
	})
	wg.Go(func() { _ = ag.Run(ctx) })
	if !cfg.DisableEngine {
		eng := engine.New(engine.Config{
			Store: st, MachineID: cfg.MachineID,
			LeaseTTL: cfg.AgentTTL, Interval: cfg.EngineReconcileInterval, Logger: log,
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
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer scancel()
	_ = httpSrv.Shutdown(sctx)
	if err := rn.StopAll(sctx); err != nil {
		log.Warn("stopping units", "err", err)
	}
	pctx, pcancel := context.WithTimeout(sctx, 3*time.Second)
	pres.close(pctx)
	pcancel()
	wg.Wait()
	_ = rn.Close(sctx)
	return runErr
}

func startEmbeddedEtcd(ctx context.Context, cfg config.Config, log *slog.Logger) (*etcdserver.Server, error) {
	name := cfg.EtcdName
	if name == "" {
		name = fleet.ShortMachineID(cfg.MachineID)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(sctx, etcdserver.Config{
		Name:             name,
		DataDir:          filepath.Join(cfg.DataDir, "etcd"),
		ListenClientURLs: cfg.EtcdListenClient,
		ListenPeerURLs:   cfg.EtcdListenPeer,
		InitialCluster:   cfg.EtcdInitialCluster,
		ClusterState:     cfg.EtcdInitialClusterState,
		Logger:           log.With("component", "etcd"),
	})
	if err != nil {
		return nil, fmt.Errorf("fleetd: embedded etcd: %w", err)
	}
	return srv, nil
}

func etcdTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.EtcdCAFile == "" && cfg.EtcdCertFile == "" && cfg.EtcdKeyFile == "" {
		return nil, nil
	}
	return loadTLS(cfg.EtcdCAFile, cfg.EtcdCertFile, cfg.EtcdKeyFile)
}

// listen opens every API address. The first TCP listener gives the URL other
// machines use to reach this one.
func listen(cfg config.Config) ([]net.Listener, string, error) {
	var ls []net.Listener
	apiURL := ""
	for _, addr := range cfg.APIAddr {
		var l net.Listener
		var err error
		if path, ok := strings.CutPrefix(addr, "unix://"); ok {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				closeAll(ls)
				return nil, "", fmt.Errorf("fleetd: api_addr %s: %w", addr, err)
			}
			_ = os.Remove(path)
			l, err = net.Listen("unix", path)
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

// presence keeps the machine registered on a lease, re-registering when the
// lease is lost.
type presence struct {
	store   *store.Store
	machine fleet.Machine
	ttl     time.Duration
	log     *slog.Logger

	cur     atomic.Pointer[store.Presence]
	leaseID atomic.Int64
}

func (p *presence) register(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		pr, err := p.store.Register(ctx, p.machine, p.ttl)
		if err == nil {
			p.cur.Store(pr)
			p.leaseID.Store(int64(pr.Lease()))
			p.log.Info("machine registered", "machine", p.machine.ID, "ttl", p.ttl)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fleetd: register machine: %w", err)
		}
		p.log.Warn("registering machine failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleetd: register machine: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (p *presence) run(ctx context.Context) {
	for {
		pr := p.cur.Load()
		select {
		case <-ctx.Done():
			return
		case <-pr.Done():
		}
		p.leaseID.Store(0)
		p.log.Warn("machine lease lost; registering again")
		if err := p.register(ctx); err != nil {
			return
		}
	}
}

func (p *presence) lease() clientv3.LeaseID { return clientv3.LeaseID(p.leaseID.Load()) }

func (p *presence) close(ctx context.Context) {
	if pr := p.cur.Load(); pr != nil {
		_ = pr.Close(ctx)
	}
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
