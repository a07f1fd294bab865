package rolloutd_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/rolloutd"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

const (
	prefix      = "/test/fleet/"
	svcPrefix   = "/test/services/"
	tmplName    = "web@.service"
	svcName     = "web"
	svcPort     = 8080
	minHealthy  = 10 * time.Second
	deadline    = 2 * time.Minute
	leaderTTL   = 10 * time.Second
	statesTTL   = 60 * time.Second
	mainMachine = "m1"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clock is a fake clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one embedded etcd, a store on it, a leadership, a lease for unit
// states (the simulated agents') and a driver on a fake clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	lead  *store.Leadership
	lease etcdkv.LeaseID
	clk   *clock
	drv   *rolloutd.Driver
}

func newEnv(t *testing.T, surge func(context.Context, []string) (map[string]string, error)) *env {
	t.Helper()
	ctx := testCtx(t)
	_, eps := etcdtest.NewServer(t)
	st := store.New(etcdkv.New(etcdtest.NewClient(t, eps)), prefix)
	lead, err := st.Campaign(ctx, mainMachine, leaderTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lead.Resign(context.Background()) })
	lease, err := st.KV().Grant(ctx, statesTTL)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	drv := rolloutd.New(rolloutd.Config{Store: st, ServicesPrefix: svcPrefix, Now: clk.Now, Surge: surge})
	return &env{t: t, ctx: ctx, st: st, lead: lead, lease: lease, clk: clk, drv: drv}
}

// webOptions is version v of the template: one [X-Service] endpoint.
func webOptions(v int) []fleet.UnitOption {
	return []fleet.UnitOption{
		{Section: "Unit", Name: "Description", Value: "web %i"},
		{Section: "Service", Name: "ExecStart", Value: fmt.Sprintf("/usr/bin/web --version %d", v)},
		{Section: "X-Service", Name: "Name", Value: svcName},
		{Section: "X-Service", Name: "Port", Value: fmt.Sprint(svcPort)},
	}
}

// globalOptions is version v of a global unit without [X-Service].
func globalOptions(v int) []fleet.UnitOption {
	return []fleet.UnitOption{
		{Section: "Service", Name: "ExecStart", Value: fmt.Sprintf("/usr/bin/agent --version %d", v)},
		{Section: "X-Fleet", Name: "Global", Value: "true"},
	}
}

// plainOptions is version v of a plain unit without [X-Service].
func plainOptions(v int) []fleet.UnitOption {
	return []fleet.UnitOption{
		{Section: "Service", Name: "ExecStart", Value: fmt.Sprintf("/usr/bin/db --version %d", v)},
	}
}

func instance(i int) string { return fmt.Sprintf("web@%d.service", i) }

// fixture is the template rollout's hashes.
type fixture struct {
	h1, h2 string
}

// setupWeb stores the template web@.service at v1 (revision 1) and its
// instances web@1..n at v1, launched, and starts a rollout of the template
// to v2 (revision 2) over them with spec's gates.
func (e *env) setupWeb(n int, spec rollout.Spec) fixture {
	e.t.Helper()
	v1, v2 := webOptions(1), webOptions(2)
	f := fixture{h1: unitfile.Hash(v1), h2: unitfile.Hash(v2)}
	tmpl := fleet.Unit{Name: tmplName, Options: v1, Hash: f.h1, DesiredState: fleet.JobStateInactive}
	if _, err := e.st.CreateUnit(e.ctx, tmpl); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.RecordRevision(e.ctx, tmplName, tmpl, "admin", t0); err != nil {
		e.t.Fatal(err)
	}
	var targets []string
	for i := 1; i <= n; i++ {
		u := fleet.Unit{Name: instance(i), Options: v1, Hash: f.h1, DesiredState: fleet.JobStateLaunched}
		if _, err := e.st.CreateUnit(e.ctx, u); err != nil {
			e.t.Fatal(err)
		}
		targets = append(targets, u.Name)
	}
	spec.Unit, spec.FromHash, spec.FromRevision, spec.ToHash, spec.ToRevision = tmplName, f.h1, 1, f.h2, 2
	e.start(spec, targets, fleet.Unit{Name: tmplName, Options: v2, Hash: f.h2, DesiredState: fleet.JobStateInactive},
		store.Revision{Unit: tmplName, Revision: 2, Hash: f.h2, Options: v2, Time: t0, User: "admin"})
	return f
}

func (e *env) start(spec rollout.Spec, targets []string, file fleet.Unit, rev store.Revision) {
	e.t.Helper()
	if spec.MaxParallel == 0 {
		spec.MaxParallel = 1
	}
	if spec.MinHealthyTime == 0 {
		spec.MinHealthyTime = minHealthy
	}
	if spec.HealthyDeadline == 0 {
		spec.HealthyDeadline = deadline
	}
	r, err := rollout.New(spec, targets, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.StartRollout(e.ctx, r, file, 0, rev); err != nil {
		e.t.Fatal(err)
	}
}

// round runs one round of the driver and fails the test on an error.
func (e *env) round() {
	e.t.Helper()
	if err := e.drv.Round(e.ctx, e.lead); err != nil {
		e.t.Fatalf("round: %v", err)
	}
}

func (e *env) record(unit string) store.RolloutRecord {
	e.t.Helper()
	rec, err := e.st.Rollout(e.ctx, unit)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func (e *env) unit(name string) fleet.Unit {
	e.t.Helper()
	u, err := e.st.Unit(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// modRev is the mod revision of units/<name> (0 if absent).
func (e *env) modRev(name string) int64 {
	e.t.Helper()
	kv, found, _, err := e.st.KV().Get(e.ctx, e.st.Layout().Unit(name))
	if err != nil {
		e.t.Fatal(err)
	}
	if !found {
		return 0
	}
	return kv.ModRev
}

// report publishes what a simulated agent on machine says of unit.
func (e *env) report(unit, machine, hash, active, sub string) {
	e.t.Helper()
	st := fleet.UnitState{Name: unit, MachineID: machine, Hash: hash, LoadState: "loaded",
		ActiveState: active, SubState: sub, JobState: fleet.JobStateLaunched}
	if err := e.st.PutUnitStates(e.ctx, e.lease, []fleet.UnitState{st}); err != nil {
		e.t.Fatal(err)
	}
}

// healthy publishes unit running hash on machine with its endpoint
// registered.
func (e *env) healthy(unit, machine, hash string) {
	e.t.Helper()
	e.report(unit, machine, hash, "active", "running")
	e.register(unit, machine)
}

// endpointKey is the registry's key of unit's endpoint on machine
// (registry.Key: <prefix><name>/<machine>:<unit>:<port>).
func endpointKey(unit, machine string) string {
	return fmt.Sprintf("%s%s/%s:%s:%d", svcPrefix, svcName, machine, unit, svcPort)
}

func (e *env) register(unit, machine string) {
	e.t.Helper()
	if _, err := e.st.KV().Put(e.ctx, endpointKey(unit, machine), "10.0.0.1:8080", 0); err != nil {
		e.t.Fatal(err)
	}
}

func target(t *testing.T, r rollout.Rollout, name string) rollout.Target {
	t.Helper()
	for _, tg := range r.Targets {
		if tg.Name == name {
			return tg
		}
	}
	t.Fatalf("no target %s in %+v", name, r.Targets)
	return rollout.Target{}
}

// statuses is "name=status ..." in target order.
func statuses(r rollout.Rollout) string {
	var b strings.Builder
	for i, tg := range r.Targets {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", tg.Name, tg.Status)
	}
	return b.String()
}
