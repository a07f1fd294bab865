package agent

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// A unit that is active within startSettle of its start has one state
// written, active (not inactive, activating, active: each a round trip
// ahead of the next); a unit that stays activating longer (a slow
// ExecStartPre=) is published as activating meanwhile.
func TestStartPublishesOnlyStatesThatLast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const prefix = "/agent-publish-test/"
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), prefix)
	pres, err := st.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pres.Close(ctx)
	jr, err := journal.Open(t.TempDir(), journal.Options{Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rn, err := execrunner.New(execrunner.Options{Journal: jr, UnitsDir: t.TempDir(), Hostname: "test", MachineID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rn.StopAll(ctx); _ = rn.Close(ctx) }()

	var mu sync.Mutex
	written := map[string][]string{} // unit -> active states written, in order
	wch := cli.Watch(ctx, prefix+"states/", clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				var s fleet.UnitState
				if json.Unmarshal(ev.Kv.Value, &s) == nil {
					unit := string(ev.Kv.Key[strings.LastIndexByte(string(ev.Kv.Key), '/')+1:])
					if l := written[unit]; len(l) == 0 || l[len(l)-1] != s.ActiveState {
						written[unit] = append(l, s.ActiveState)
					}
				}
			}
			mu.Unlock()
		}
	}()
	seq := func(unit string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), written[unit]...)
	}

	a := New(Config{Store: st, Runner: rn, MachineID: "m1", Lease: pres.Lease, Interval: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	_, lead, _ := launchOnM1(ctx, t, st, "slow.service", "[Service]\nExecStartPre=/bin/sleep 1\nExecStart=/bin/sleep 600\n")
	eventually(t, "slow.service published activating while its ExecStartPre runs", func() bool {
		s := seq("slow.service")
		return len(s) > 0 && s[len(s)-1] == "activating"
	}, func() string { return strings.Join(seq("slow.service"), ",") })
	eventually(t, "slow.service active", func() bool {
		s := seq("slow.service")
		return len(s) > 0 && s[len(s)-1] == "active"
	}, func() string { return strings.Join(seq("slow.service"), ",") })

	// fast.service: scheduled by a second Apply from the same leader.
	opts, err := unitfile.Parse([]byte("[Service]\nExecStart=/bin/sleep 600\n"))
	if err != nil {
		t.Fatal(err)
	}
	fast := fleet.Unit{Name: "fast.service", Options: opts, Hash: unitfile.Hash(opts), DesiredState: fleet.JobStateLaunched}
	if _, err := st.CreateUnit(ctx, fast); err != nil {
		t.Fatal(err)
	}
	entry := store.ScheduleEntry{Unit: fast.Name, Machine: "m1", Hash: fast.Hash, DesiredState: fleet.JobStateLaunched}
	if err := st.Apply(ctx, lead, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fast.service active", func() bool {
		s := seq("fast.service")
		return len(s) > 0 && s[len(s)-1] == "active"
	}, func() string { return strings.Join(seq("fast.service"), ",") })
	time.Sleep(100 * time.Millisecond)
	if s := seq("fast.service"); len(s) != 1 {
		t.Errorf("fast.service: states written %v, want only active", s)
	}
}
