package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/agent"
	"github.com/fleetd/fleet/internal/engine"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/rolloutd"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// runRollout: a rolling update of N template instances on simulated
// machines (in-process agents with the simulated runner, one in-process
// engine that drives the rollout), timed against its floor: the number of
// batches times min-healthy-time.
func runRollout(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "rollout", "N instances of a template on simulated machines; roll them to a new file with max-parallel P; time against batches x min-healthy-time")
	instances := fs.Int("instances", 100, "template instances to roll")
	machines := fs.Int("machines", 10, "simulated machines")
	parallel := fs.Int("max-parallel", 10, "instances moved at once (a batch)")
	minHealthy := fs.Duration("min-healthy-time", time.Second, "how long an instance must stay healthy")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *instances < 1 || *machines < 1 || *parallel < 1 {
		return nil, errors.New("--instances, --machines and --max-parallel must be at least 1")
	}
	dir, err := os.MkdirTemp("", "fleet-bench-rollout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := startEtcd(ctx, filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cli, err := newClient(srv.ClientURLs(), "")
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	const prefix = "/fleet-bench/"
	st := store.New(etcdkv.New(cli), prefix)

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	eng := engine.New(engine.Config{Store: st, MachineID: "engine", LeaseTTL: 10 * time.Second,
		WhileLeading: rolloutd.New(rolloutd.Config{Store: st}).Run})
	wg.Go(func() { _ = eng.Run(runCtx) })
	for i := range *machines {
		id := fmt.Sprintf("m%04d", i)
		pres, err := st.Register(runCtx, fleet.Machine{ID: id, PublicIP: "10.0.0.1"}, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", id, err)
		}
		ag := agent.New(agent.Config{Store: st, Runner: newSimRunner(), MachineID: id, Lease: pres.Lease})
		wg.Go(func() { _ = ag.Run(runCtx) })
	}

	version := func(v int) []fleet.UnitOption {
		return []fleet.UnitOption{
			{Section: "Unit", Name: "Description", Value: "fleet-bench rollout %i"},
			{Section: "Service", Name: "ExecStart", Value: fmt.Sprintf("/bin/sleep infinity # v%d", v)},
		}
	}
	v1, v2 := version(1), version(2)
	h1, h2 := unitfile.Hash(v1), unitfile.Hash(v2)
	tmpl := fleet.Unit{Name: "bench@.service", Options: v1, Hash: h1, DesiredState: fleet.JobStateInactive}
	if _, err := st.CreateUnit(ctx, tmpl); err != nil {
		return nil, err
	}
	if _, err := st.RecordRevision(ctx, tmpl.Name, tmpl, "fleet-bench", time.Now()); err != nil {
		return nil, err
	}
	var targets []string
	var units []fleet.Unit
	for i := range *instances {
		name := fmt.Sprintf("bench@%d.service", i+1)
		targets = append(targets, name)
		units = append(units, fleet.Unit{Name: name, Options: v1, Hash: h1, DesiredState: fleet.JobStateLaunched})
	}
	if _, err := st.CreateUnits(ctx, units); err != nil {
		return nil, err
	}
	countAt := func(hash string) (int, error) {
		sts, err := st.UnitStates(ctx)
		n := 0
		for _, s := range sts {
			if s.Hash == hash && s.ActiveState == "active" {
				n++
			}
		}
		return n, err
	}
	t := time.Now()
	for {
		n, err := countAt(h1)
		if err != nil {
			return nil, err
		}
		if n == *instances {
			break
		}
		if time.Since(t) > *timeout {
			return nil, fmt.Errorf("only %d/%d instances active at v1 after %v", n, *instances, *timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.printf("%d instances active on %d simulated machines (%.1fs)\n", *instances, *machines, time.Since(t).Seconds())

	r, err := rollout.New(rollout.Spec{Unit: tmpl.Name, FromHash: h1, FromRevision: 1, ToHash: h2, ToRevision: 2,
		MaxParallel: *parallel, MinHealthyTime: *minHealthy, HealthyDeadline: time.Minute, User: "fleet-bench"}, targets, time.Now())
	if err != nil {
		return nil, err
	}
	newTmpl := tmpl
	newTmpl.Options, newTmpl.Hash = v2, h2
	t0 := time.Now()
	if err := st.StartRollout(ctx, r, newTmpl, 0, store.Revision{Unit: tmpl.Name, Revision: 2, Hash: h2, Options: v2, Time: t0.UTC(), User: "fleet-bench"}); err != nil {
		return nil, err
	}
	var phase rollout.Phase
	for {
		rec, err := st.Rollout(ctx, tmpl.Name)
		if err != nil {
			return nil, err
		}
		phase = rec.Rollout.Phase
		if phase.Terminal() {
			break
		}
		if time.Since(t0) > *timeout {
			return nil, fmt.Errorf("rollout not done after %v: %s", *timeout, rollout.Progress(rec.Rollout))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(t0)
	if phase != rollout.PhaseDone {
		return nil, fmt.Errorf("rollout ended %s", phase)
	}
	n, err := countAt(h2)
	if err != nil {
		return nil, err
	}
	batches := (*instances + *parallel - 1) / *parallel
	floor := time.Duration(batches) * *minHealthy
	res := map[string]any{
		"instances":             *instances,
		"machines":              *machines,
		"max_parallel":          *parallel,
		"batches":               batches,
		"min_healthy_time_s":    minHealthy.Seconds(),
		"rollout_s":             round(took.Seconds(), 2),
		"floor_s":               round(floor.Seconds(), 2),
		"overhead_per_batch_ms": round(ms((took-floor)/time.Duration(batches)), 1),
		"active_at_new_hash":    n,
	}
	e.summary(fmt.Sprintf("rollout: %d instances, max-parallel %d, min-healthy-time %v", *instances, *parallel, *minHealthy), res)
	return res, nil
}
