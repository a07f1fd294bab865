package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func runFailover(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "failover", "three fleetd (each with a member of one 3-member embedded etcd), 30 units; kill -9 one; time until its units are active elsewhere; with the default agent_ttl and a short one; and whether any unit moves while the etcd leader's fleetd is frozen for 5 s")
	units := fs.Int("units", 30, "units to spread over the machines")
	short := fs.Duration("short-ttl", 2*time.Second, "the short agent_ttl")
	freeze := fs.Duration("freeze", 5*time.Second, "how long the etcd leader's fleetd is stopped (SIGSTOP) in the leader-change part; 0 skips it")
	bin := fs.String("fleetd", "", "fleetd binary (default: build ./cmd/fleetd)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	dir, path, err := fleetdWorkdir(ctx, e, "failover", *bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := map[string]any{"units": *units, "machines": 3, "etcd_members": 3}
	for _, run := range []struct {
		name   string
		ttl    time.Duration
		freeze time.Duration
	}{
		{"default_ttl", config.DefaultAgentTTL, *freeze},
		{"short_ttl", *short, 0},
	} {
		r, err := failoverOnce(ctx, e, path, filepath.Join(dir, run.name), *units, run.ttl, run.freeze)
		for k, v := range r {
			res[run.name+"_"+k] = v
		}
		if err != nil {
			e.summary("failover (incomplete)", res)
			return res, fmt.Errorf("%s: %w", run.name, err)
		}
	}
	res["target_default_s"] = 10
	res["target_short_s"] = 3
	res["fleet_reference_s"] = 30
	e.summary("failover: kill -9 one of three fleetd", res)
	return res, nil
}

func failoverOnce(ctx context.Context, e *env, bin, dir string, n int, ttl, freeze time.Duration) (map[string]any, error) {
	res := map[string]any{"agent_ttl_s": ttl.Seconds()}
	e.printf("-- agent_ttl %v: starting 3 fleetd\n", ttl)
	c, err := startCluster(ctx, bin, dir, clusterOpts{n: 3, agentTTL: ttl, members: true})
	if err != nil {
		return res, err
	}
	defer c.stop()
	cli := c.cli
	aw := watchActive(ctx, cli, store.DefaultPrefix)
	st := store.New(etcdkv.New(cli), "")
	api, err := c.client(0)
	if err != nil {
		return res, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("failover-%02d.service", i)
		if err := api.CreateUnit(ctx, sleepUnit(names[i])); err != nil {
			return res, err
		}
	}
	allActive := func(a map[string]map[string]time.Time) bool {
		for _, u := range names {
			if len(a[u]) == 0 {
				return false
			}
		}
		return true
	}
	if _, ok := aw.await(ctx, 60*time.Second, allActive); !ok {
		return res, fmt.Errorf("units never all active; end of fleetd logs:\n%s", c.logTails(1500))
	}
	time.Sleep(time.Second) // settle

	if freeze > 0 {
		r, err := leaderChange(ctx, e, c, cli, aw, freeze)
		for k, v := range r {
			res[k] = v
		}
		if err != nil {
			return res, err
		}
		if _, ok := aw.await(ctx, 60*time.Second, allActive); !ok {
			return res, errors.New("units not all active after the leader change")
		}
	}

	// The victim: not the etcd leader (no etcd election on top of the
	// failover), preferably the engine leader (the worst case: the engine
	// must fail over too).
	etcdLeader := etcdLeaderIndex(ctx, c, cli)
	engLeader, _ := st.Leader(ctx)
	victim := -1
	for i, p := range c.procs {
		if i == etcdLeader {
			continue
		}
		if victim < 0 || p.id == engLeader {
			victim = i
		}
	}
	vid := c.procs[victim].id
	var moved []string
	for _, u := range names {
		if slices.Contains(aw.where(u), vid) {
			moved = append(moved, u)
		}
	}
	res["victim_units"] = len(moved)
	res["victim_was_engine_leader"] = vid == engLeader
	e.printf("   kill -9 fleetd %d (%d units, engine leader: %v)\n", victim, len(moved), vid == engLeader)
	// Baseline: when etcd expires the victim's lease (its machines/ key
	// goes), which bounds any failover from below.
	gone := make(chan time.Time, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	mwatch := cli.Watch(wctx, st.Prefix()+"machines/"+vid)
	go func() {
		for resp := range mwatch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					gone <- time.Now()
					return
				}
			}
		}
	}()
	t0 := time.Now()
	c.procs[victim].kill()
	t1, ok := aw.await(ctx, 5*ttl+30*time.Second, func(a map[string]map[string]time.Time) bool {
		for _, u := range moved {
			elsewhere := false
			for m := range a[u] {
				if m != vid {
					elsewhere = true
				}
			}
			if !elsewhere {
				return false
			}
		}
		return true
	})
	if !ok {
		return res, errors.New("the victim's units were not active elsewhere in time")
	}
	res["failover_s"] = round(t1.Sub(t0).Seconds(), 2)
	select {
	case tg := <-gone:
		res["baseline_lease_expired_s"] = round(tg.Sub(t0).Seconds(), 2)
		res["after_lease_expiry_ms"] = round(ms(t1.Sub(tg)), 1)
	case <-time.After(time.Second):
	}
	e.printf("   its units active elsewhere after %.2fs\n", t1.Sub(t0).Seconds())
	return res, nil
}

// leaderChange stops (SIGSTOP) the fleetd whose etcd member leads, for
// freeze, and counts the schedule writes from then until 2 agent TTLs
// after it resumed: a unit that moves shows as schedule writes.
func leaderChange(ctx context.Context, e *env, c *fleetdCluster, cli *clientv3.Client, aw *activeWatch, freeze time.Duration) (map[string]any, error) {
	res := map[string]any{}
	li := etcdLeaderIndex(ctx, c, cli)
	if li < 0 {
		return res, errors.New("no etcd leader found")
	}
	before := aw.scheduleWrites()
	e.printf("   SIGSTOP fleetd %d (etcd leader) for %v\n", li, freeze)
	p := c.procs[li]
	_ = syscall.Kill(p.pid(), syscall.SIGSTOP)
	t0 := time.Now()
	newLeader := -1
	for time.Since(t0) < freeze {
		if newLeader < 0 {
			if i := etcdLeaderIndex(ctx, c, cli); i >= 0 && i != li {
				newLeader = i
				res["etcd_new_leader_after_s"] = round(time.Since(t0).Seconds(), 2)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(p.pid(), syscall.SIGCONT)
	time.Sleep(10 * time.Second)
	res["leader_change_freeze_s"] = freeze.Seconds()
	res["leader_change_schedule_writes"] = aw.scheduleWrites() - before
	e.printf("   schedule writes during and 10 s after: %d\n", aw.scheduleWrites()-before)
	return res, nil
}

// etcdLeaderIndex returns the index of the fleetd whose member leads etcd,
// or -1.
func etcdLeaderIndex(ctx context.Context, c *fleetdCluster, cli *clientv3.Client) int {
	for i, p := range c.procs {
		if !p.alive() || p.etcd == "" {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		st, err := cli.Status(sctx, strings.TrimPrefix(p.etcd, ""))
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return i
		}
	}
	return -1
}

func awaitMachines(ctx context.Context, st *store.Store, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ms, err := st.Machines(ctx); err == nil && len(ms) == n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not %d machines after %v", n, d)
}
