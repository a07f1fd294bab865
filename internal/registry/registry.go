// Package registry publishes the service endpoints of this machine's
// running units (their [X-Service] sections, see unitfile.Services) and of
// other sources (Docker containers, see registry/docker) in etcd, in
// registrator's layout:
//
//	<prefix><name>/<machine-id>:<unit-or-container>:<port> = <public_ip>:<port>
//
// with the prefix "/services/" by default. registrator put the hostname in
// the first slot; it only has to be unique per machine, and a hostname is
// not (several fleetd on one host, as in the README tour, would write the
// same key with different values). The full machine ID is: it is the
// identity fleet itself keys machines by, and an 8-character prefix would
// only be probably unique (and not at all for chosen IDs sharing one).
//
// Contract:
//  1. Every key is written on the machine's lease (Config.Lease), so the
//     endpoints of a dead machine vanish when its lease expires. When the
//     lease changes, everything is written again on the new one.
//  2. SetUnits is level-triggered: it gives the whole current set of units
//     loaded here; the registry diffs. An endpoint is published while its
//     unit is active and its health check passes: at once when it has no
//     check, after the first passing check otherwise (until then the check
//     runs every 500 ms or its interval if shorter); CheckThreshold
//     consecutive failures remove it and as many consecutive passes
//     restore it.
//  3. Deregister removes a unit's endpoints from etcd before it returns; the
//     unit then stays unpublished until it is seen inactive, or active
//     again since another time (a new activation). When it removed a key,
//     it then waits Config.DeregisterDelay (bounded by its context), so that
//     balancers watching etcd stop sending new requests, and the requests
//     they already sent finish, before the caller stops the unit.
//  4. Deletes compare the key's lease with the one it was written on, so a
//     machine never deletes a key another machine wrote.
//  5. Every ResyncInterval the registry reads its keys back and repairs
//     what differs (a key deleted or overwritten by someone else, a key on
//     its lease it does not want).
//  6. Without a public IP, or without a machine ID, nothing is published
//     (a warning is logged): the registry never guesses an address or an
//     identity.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// DefaultPrefix is where endpoints are published.
const DefaultPrefix = "/services/"

// Defaults of Config.
const (
	DefaultResyncInterval = 10 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// pendingCheckInterval is the cadence of checks until an endpoint's
	// first pass (or its interval, if shorter).
	pendingCheckInterval = 500 * time.Millisecond
	// leasePoll is how often Run looks for a new lease.
	leasePoll = 250 * time.Millisecond
	// maxTxnOps bounds the operations of one etcd transaction.
	maxTxnOps = 100
	// DefaultDeregisterDelay is the time between removing a unit's
	// endpoints and stopping it that fleetd leaves: fleetd lb drops a
	// backend a few milliseconds after its key goes; confd and haproxy
	// need a render, a check and a reload (0.2-0.9 s measured on 2 busy
	// cores, e2e TestHAProxyConfdReload).
	DefaultDeregisterDelay = time.Second
)

// Config configures a Registry.
type Config struct {
	// Client is the etcd client (required).
	Client *etcdkv.Client
	// Prefix of the keys (DefaultPrefix if empty; a trailing '/' is added).
	Prefix string
	// MachineID is this machine's ID: the first part of every key's last
	// segment. Without it nothing is published.
	MachineID string
	// PublicIP is the advertised address: the value of every key, and the
	// address health checks connect to.
	PublicIP string
	// Hostname is informational (logged); it is not part of the keys,
	// since several machines may share a host.
	Hostname string
	// Lease returns the machine's current lease (0 while there is none:
	// nothing is written then).
	Lease func() etcdkv.LeaseID
	// Logger receives registrations, removals and failures.
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// ResyncInterval is how often etcd is read back and repaired
	// (DefaultResyncInterval if ≤ 0).
	ResyncInterval time.Duration
	// RequestTimeout bounds each etcd request (DefaultRequestTimeout if ≤ 0).
	RequestTimeout time.Duration
	// DeregisterDelay is how long Deregister and DeregisterAll wait after
	// removing at least one key (0: no wait; the daemon uses
	// DefaultDeregisterDelay).
	DeregisterDelay time.Duration
	// OnCheck, when set, is told each health check result that differs
	// from the last one it was told for that endpoint (err nil: passing),
	// from the check's goroutine: the daemon records failures where the
	// rollout driver reads them.
	OnCheck func(ctx context.Context, unit string, svc fleet.Service, err error)
}

// Unit is a unit loaded on this machine, as the daemon sees it.
type Unit struct {
	Name    string
	Options []fleet.UnitOption
	// Active is true when the unit's ActiveState is "active".
	Active bool
	// Since is when the unit entered its current state (runner.State.Since):
	// it tells a new activation from the one Deregister saw.
	Since time.Time
}

// Endpoint is one key to publish from a source other than units (Docker).
type Endpoint struct {
	// Name is the service name.
	Name string
	// Instance is the middle of the key's last segment (a container name).
	Instance string
	// Port is the port in the key (a container's exposed port).
	Port int
	// HostPort is the port in the value (the published host port).
	HostPort int
	// Tags are informational: registrator's etcd layout has no place for
	// them, so they are not written.
	Tags []string
}

// Registry publishes endpoints; create it with New, then call Run.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	wake   chan struct{}
	writer chan struct{} // one etcd writer at a time (a semaphore honoring ctx)
	// probe runs one health check (r.check; tests replace it to drive
	// runCheck's cadence and thresholds without a network).
	probe func(ctx context.Context, svc fleet.Service) error

	mu        sync.Mutex
	units     map[string]*unitState
	external  map[string][]Endpoint
	published map[string]pubEntry
	pubLease  etcdkv.LeaseID
	closed    bool
	warnedIP  bool
	warnedID  bool
}

// pubEntry is a key as the registry last wrote it.
type pubEntry struct {
	value string
	lease etcdkv.LeaseID
	owner string // unit name, or "docker:"-like source
}

type unitState struct {
	unit     Unit
	services []fleet.Service
	parseErr error
	// deregistered: Deregister was called; deregSince is the unit's Since
	// at that time.
	deregistered bool
	deregSince   time.Time
	checks       []*checker // non-nil while the unit is wanted
}

type checker struct {
	svc     fleet.Service
	cancel  context.CancelFunc
	healthy bool // guarded by Registry.mu
	since   time.Time
}

// New returns a Registry.
func New(cfg Config) *Registry {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Lease == nil {
		cfg.Lease = func() etcdkv.LeaseID { return 0 }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		cfg:       cfg,
		log:       log.With("component", "registry", "machine", cfg.MachineID, "host", cfg.Hostname),
		wake:      make(chan struct{}, 1),
		writer:    make(chan struct{}, 1),
		units:     map[string]*unitState{},
		external:  map[string][]Endpoint{},
		published: map[string]pubEntry{},
	}
	r.probe = r.check
	return r
}

// Prefix returns the key prefix, with its trailing '/'.
func (r *Registry) Prefix() string { return r.cfg.Prefix }

// Key returns the key of an endpoint:
// <prefix><name>/<machine-id>:<instance>:<port>.
func (r *Registry) Key(name, instance string, port int) string {
	return r.cfg.Prefix + name + "/" + r.cfg.MachineID + ":" + instance + ":" + strconv.Itoa(port)
}

func (r *Registry) value(port int) string {
	return net.JoinHostPort(r.cfg.PublicIP, strconv.Itoa(port))
}

func (r *Registry) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// SetUnits replaces the set of units loaded here.
func (r *Registry) SetUnits(units []Unit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]bool, len(units))
	for _, u := range units {
		seen[u.Name] = true
		st, ok := r.units[u.Name]
		if !ok {
			st = &unitState{}
			r.units[u.Name] = st
		}
		if !ok || !reflect.DeepEqual(st.unit.Options, u.Options) {
			r.stopChecksLocked(st)
			st.services, st.parseErr = unitfile.Services(u.Name, u.Options)
			if st.parseErr != nil {
				r.log.Warn("unit declares invalid services; not registering it", "unit", u.Name, "err", st.parseErr)
			}
		}
		if st.deregistered {
			switch {
			case !u.Active:
				st.deregistered = false
			case st.deregSince.IsZero():
				st.deregSince = u.Since
			case !u.Since.Equal(st.deregSince):
				st.deregistered = false
			}
		}
		st.unit = u
	}
	for name, st := range r.units {
		if !seen[name] {
			r.stopChecksLocked(st)
			delete(r.units, name)
		}
	}
	r.kick()
}

// SetExternal replaces the endpoints of one source (e.g. "docker"). They
// are published as given, without health checks.
func (r *Registry) SetExternal(source string, eps []Endpoint) {
	r.mu.Lock()
	if len(eps) == 0 {
		delete(r.external, source)
	} else {
		r.external[source] = slices.Clone(eps)
	}
	r.mu.Unlock()
	r.kick()
}

// Deregister removes the endpoints of unit from etcd and keeps them out
// until the unit is active again (see the package contract). Call it
// before stopping the unit.
func (r *Registry) Deregister(ctx context.Context, unit string) error {
	r.mu.Lock()
	st, ok := r.units[unit]
	if !ok {
		st = &unitState{unit: Unit{Name: unit}}
		r.units[unit] = st
	}
	if !st.deregistered {
		st.deregistered = true
		st.deregSince = st.unit.Since
		if !st.unit.Active {
			st.deregSince = time.Time{}
		}
	}
	r.stopChecksLocked(st)
	// Count what is published now: the sync loop may remove these keys
	// before deleteOwned gets the writer, and the delay is owed either way.
	had := 0
	for _, e := range r.published {
		if e.owner == unit {
			had++
		}
	}
	r.mu.Unlock()
	n, err := r.deleteOwned(ctx, func(owner string) bool { return owner == unit })
	r.deregisterDelay(ctx, max(n, had))
	return err
}

// DeregisterAll removes every endpoint this registry published and stops
// publishing: call it when fleetd shuts down, before stopping the units.
func (r *Registry) DeregisterAll(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	for _, st := range r.units {
		r.stopChecksLocked(st)
	}
	had := len(r.published)
	r.mu.Unlock()
	n, err := r.deleteOwned(ctx, func(string) bool { return true })
	r.deregisterDelay(ctx, max(n, had))
	return err
}

// deregisterDelay waits Config.DeregisterDelay, or until ctx ends, after n
// keys were removed (n > 0): watchers of etcd learn of the removal and
// finish the requests they sent before the unit is stopped.
func (r *Registry) deregisterDelay(ctx context.Context, n int) {
	if n == 0 || r.cfg.DeregisterDelay <= 0 {
		return
	}
	t := time.NewTimer(r.cfg.DeregisterDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// deleteOwned deletes the published keys whose owner matches and returns
// how many it tried to delete.
func (r *Registry) deleteOwned(ctx context.Context, match func(owner string) bool) (int, error) {
	if err := r.lockWriter(ctx); err != nil {
		return 0, fmt.Errorf("registry: deregister: %w", err)
	}
	defer r.unlockWriter()
	r.mu.Lock()
	del := map[string]pubEntry{}
	for k, e := range r.published {
		if match(e.owner) {
			del[k] = e
		}
	}
	r.mu.Unlock()
	return len(del), r.deleteKeys(ctx, del)
}

func (r *Registry) lockWriter(ctx context.Context) error {
	select {
	case r.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Registry) unlockWriter() { <-r.writer }

// deleteKeys deletes keys if they are still on the lease they were written
// on, and forgets them. The caller holds the writer.
func (r *Registry) deleteKeys(ctx context.Context, del map[string]pubEntry) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(del)) {
		e := del[k]
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		_, err := r.cfg.Client.Txn(rctx, []etcdkv.Cond{etcdkv.LeaseIs(k, e.lease)}, etcdkv.DeleteOp(k))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("registry: delete %s: %w", k, err))
			continue
		}
		r.log.Info("endpoint removed", "key", k, "owner", e.owner)
		r.mu.Lock()
		if cur, ok := r.published[k]; ok && cur == e {
			delete(r.published, k)
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Run publishes until ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	defer func() {
		r.mu.Lock()
		for _, st := range r.units {
			r.stopChecksLocked(st)
		}
		r.mu.Unlock()
	}()
	resync := time.NewTicker(r.cfg.ResyncInterval)
	defer resync.Stop()
	poll := time.NewTicker(leasePoll)
	defer poll.Stop()
	verify := true
	for {
		r.reconcileChecks(ctx)
		if verify {
			if err := r.verify(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reading endpoints back failed", "err", err)
			}
			verify = false
		}
		if err := r.sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("publishing endpoints failed", "err", err)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-r.wake:
				break wait
			case <-resync.C:
				verify = true
				break wait
			case <-poll.C:
				r.mu.Lock()
				changed := r.cfg.Lease() != r.pubLease
				r.mu.Unlock()
				if changed {
					break wait
				}
			}
		}
	}
}

// reconcileChecks starts the checks of wanted units and stops the others.
func (r *Registry) reconcileChecks(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.units {
		want := st.unit.Active && !st.deregistered && st.parseErr == nil && len(st.services) > 0 && !r.closed
		switch {
		case want && st.checks == nil:
			st.checks = make([]*checker, 0, len(st.services))
			for _, svc := range st.services {
				c := &checker{svc: svc, since: r.cfg.Now()}
				if !svc.HasCheck() {
					c.healthy = true
					c.cancel = func() {}
				} else {
					cctx, cancel := context.WithCancel(ctx)
					c.cancel = cancel
					go r.runCheck(cctx, st.unit.Name, c)
				}
				st.checks = append(st.checks, c)
			}
		case !want && st.checks != nil:
			r.stopChecksLocked(st)
		}
	}
}

func (r *Registry) stopChecksLocked(st *unitState) {
	for _, c := range st.checks {
		c.cancel()
	}
	st.checks = nil
}

// desiredLocked returns every key that should be published, with its value
// and owner.
func (r *Registry) desiredLocked() map[string]pubEntry {
	want := map[string]pubEntry{}
	if r.closed || r.cfg.PublicIP == "" || r.cfg.MachineID == "" {
		return want
	}
	for name, st := range r.units {
		for _, c := range st.checks {
			if c.healthy {
				want[r.Key(c.svc.Name, name, c.svc.Port)] = pubEntry{value: r.value(c.svc.Port), owner: name}
			}
		}
	}
	for src, eps := range r.external {
		for _, e := range eps {
			want[r.Key(e.Name, e.Instance, e.Port)] = pubEntry{value: r.value(e.HostPort), owner: src + ":" + e.Instance}
		}
	}
	return want
}

// sync writes what is missing or different and deletes what is no longer
// wanted.
func (r *Registry) sync(ctx context.Context) error {
	if err := r.lockWriter(ctx); err != nil {
		return err
	}
	defer r.unlockWriter()
	lease := r.cfg.Lease()
	r.mu.Lock()
	if r.cfg.PublicIP == "" && !r.warnedIP && len(r.units) > 0 {
		r.warnedIP = true
		r.log.Warn("no public IP configured: service endpoints are not published")
	}
	if r.cfg.MachineID == "" && !r.warnedID && len(r.units)+len(r.external) > 0 {
		r.warnedID = true
		r.log.Warn("no machine ID configured: service endpoints are not published")
	}
	if lease == 0 {
		r.mu.Unlock()
		return nil
	}
	if lease != r.pubLease {
		// Whatever was written on the old lease is gone with it.
		if r.pubLease != 0 && len(r.published) > 0 {
			r.log.Info("machine lease changed; publishing endpoints again", "endpoints", len(r.published))
		}
		clear(r.published)
		r.pubLease = lease
	}
	want := r.desiredLocked()
	var put []string
	for k, e := range want {
		if cur, ok := r.published[k]; !ok || cur.value != e.value || cur.lease != lease || cur.owner != e.owner {
			put = append(put, k)
		}
	}
	del := map[string]pubEntry{}
	for k, e := range r.published {
		if _, ok := want[k]; !ok {
			del[k] = e
		}
	}
	r.mu.Unlock()

	var errs []error
	if err := r.deleteKeys(ctx, del); err != nil {
		errs = append(errs, err)
	}
	slices.Sort(put)
	for chunk := range slices.Chunk(put, maxTxnOps) {
		ops := make([]etcdkv.Op, len(chunk))
		for i, k := range chunk {
			ops[i] = etcdkv.PutOp(k, want[k].value, lease)
		}
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		_, err := r.cfg.Client.Txn(rctx, nil, ops...)
		cancel()
		if err != nil {
			if errors.Is(err, etcdkv.ErrLeaseNotFound) {
				err = fmt.Errorf("lease %x is gone (a new one is coming): %w", int64(lease), err)
			}
			errs = append(errs, fmt.Errorf("registry: publish %d endpoints: %w", len(chunk), err))
			continue
		}
		r.mu.Lock()
		for _, k := range chunk {
			e := want[k]
			e.lease = lease
			if _, had := r.published[k]; !had {
				r.log.Info("endpoint published", "key", k, "value", e.value, "owner", e.owner)
			}
			r.published[k] = e
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// verify reads the prefix back: published keys that are missing or
// different are forgotten (so sync writes them again), and keys on our
// lease that we did not publish are deleted.
func (r *Registry) verify(ctx context.Context) error {
	lease := r.cfg.Lease()
	if lease == 0 {
		return nil
	}
	if err := r.lockWriter(ctx); err != nil {
		return err
	}
	defer r.unlockWriter()
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	resp, err := r.cfg.Client.List(rctx, r.cfg.Prefix, etcdkv.ListOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("registry: read %s: %w", r.cfg.Prefix, err)
	}
	inEtcd := make(map[string]pubEntry, len(resp.KVs))
	for _, kv := range resp.KVs {
		inEtcd[kv.Key] = pubEntry{value: string(kv.Value), lease: kv.Lease}
	}
	r.mu.Lock()
	for k, e := range r.published {
		got, ok := inEtcd[k]
		if !ok || got.value != e.value || got.lease != e.lease {
			r.log.Info("endpoint changed behind our back; writing it again", "key", k)
			delete(r.published, k)
		}
	}
	stray := map[string]pubEntry{}
	for k, e := range inEtcd {
		if _, ok := r.published[k]; !ok && e.lease == lease {
			e.owner = "stray"
			stray[k] = e
		}
	}
	r.mu.Unlock()
	return r.deleteKeys(ctx, stray)
}
