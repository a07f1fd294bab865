package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"

	"github.com/fleetd/fleet/internal/fleet"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
)

// leaseFileName is <data_dir>/lease: the machine's current lease, for a
// restarted fleetd to take over. Its modification time is the heartbeat:
// fleetd sets it to the time of every lease renewal, and unit shims stop
// their unit when it is older than agent_ttl.
const leaseFileName = "lease"

// aliveFileName is <data_dir>/alive: fleetd touches it every aliveInterval
// while it runs, whether or not etcd answers. The units' shims watch it and
// stop their units when it is agent_ttl old (or missing): fleetd is gone.
const aliveFileName = "alive"

const aliveInterval = 500 * time.Millisecond

type leaseFile struct {
	Lease     int64  `json:"lease"`
	MachineID string `json:"machineID"`
}

// shimCommand is how the runner starts a unit's shim: fleet-shim next to
// this binary or in PATH, else this very binary (`fleetd shim`); nil (no
// shims: units are fleetd's children) if neither can be found.
func shimCommand() []string {
	return execrunner.ResolveShimCommand(execrunner.ShimLookup{
		Executable:   os.Executable,
		IsExecutable: execrunner.IsExecutableFile,
		LookPath:     exec.LookPath,
	})
}

// presence keeps the machine registered on a lease, re-registering when the
// lease is lost. After a restart it takes over the previous run's lease if
// that is still alive, so nothing moves.
type presence struct {
	store     *store.Store
	machine   fleet.Machine
	ttl       time.Duration
	log       *slog.Logger
	leaseFile string
	// now is the clock of its decisions (how long since a renewal).
	now func() time.Time

	cur     atomic.Pointer[store.Presence]
	leaseID atomic.Int64
	// expiring is set while the lease has gone unrenewed for nearly its
	// TTL: the units were stopped and no state is published.
	expiring atomic.Bool
}

// expiryGuard is how long before its TTL runs out an unrenewed lease is
// treated as lost: the units stop before another machine can start them
// (the etcd client itself notices only at the TTL, within 500ms).
func expiryGuard(ttl time.Duration) time.Duration { return min(ttl/8, 500*time.Millisecond) }

// saved returns the lease recorded by an earlier run and when it was last
// renewed.
func (p *presence) saved() (etcdkv.LeaseID, time.Time) {
	var lf leaseFile
	b, err := os.ReadFile(p.leaseFile)
	if err != nil || json.Unmarshal(b, &lf) != nil || lf.MachineID != p.machine.ID {
		return 0, time.Time{}
	}
	st, err := os.Stat(p.leaseFile)
	if err != nil {
		return 0, time.Time{}
	}
	return etcdkv.LeaseID(lf.Lease), st.ModTime()
}

func (p *presence) save(lease etcdkv.LeaseID) {
	b, _ := json.Marshal(leaseFile{Lease: int64(lease), MachineID: p.machine.ID})
	tmp := p.leaseFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, p.leaseFile)
		if err != nil {
			p.log.Warn("cannot record the machine's lease", "err", err)
		}
	}
}

func (p *presence) set(pr *store.Presence) {
	p.cur.Store(pr)
	p.leaseID.Store(int64(pr.Lease()))
}

// register registers the machine, taking over the lease of an earlier run
// if it is still alive. When that lease is gone, leaseGone is called first:
// the machine's units were (are being) placed elsewhere.
func (p *presence) register(ctx context.Context, leaseGone func(context.Context)) error {
	backoff := 100 * time.Millisecond
	resume, renewed := p.saved()
	for {
		var err error
		if resume != 0 {
			var pr *store.Presence
			pr, err = p.store.Resume(ctx, p.machine, resume)
			if err == nil {
				p.set(pr)
				p.log.Info("machine lease taken over from the previous run; units keep running", "machine", p.machine.ID, "lease", fmt.Sprintf("%x", int64(resume)), "away", p.now().Sub(renewed).Round(time.Millisecond))
				return nil
			}
			if errors.Is(err, store.ErrLeaseGone) || p.now().Sub(renewed) > p.ttl {
				// The machine was away longer than agent_ttl: its units
				// are (being) placed elsewhere. Stop the stale copies
				// before anything else.
				p.log.Warn("previous machine lease is gone; registering again (units moved elsewhere meanwhile stop at the first reconcile)", "err", err, "away", p.now().Sub(renewed).Round(time.Millisecond))
				leaseGone(ctx)
				resume = 0
				continue
			}
		} else {
			var pr *store.Presence
			pr, err = p.store.Register(ctx, p.machine, p.ttl)
			if err == nil {
				p.save(pr.Lease())
				p.set(pr)
				p.log.Info("machine registered", "machine", p.machine.ID, "ttl", p.ttl)
				return nil
			}
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
		backoff = min(backoff*2, 2*time.Second)
	}
}

// run registers the machine again whenever its lease is lost, after
// calling leaseLost (the agent stops the units that must not outlive the
// lease). It returns nil when ctx ends.
func (p *presence) run(ctx context.Context, leaseLost func(context.Context)) error {
	for {
		pr := p.cur.Load()
		select {
		case <-ctx.Done():
			return nil
		case <-pr.Done():
		}
		if ctx.Err() != nil {
			return nil // our own shutdown released the lease
		}
		p.leaseID.Store(0)
		p.log.Warn("machine lease lost; registering again (units keep running unless StopOnDisconnect=true; copies moved elsewhere stop once the schedule is read)", "last_renewal", pr.Renewed())
		leaseLost(ctx)
		p.expiring.Store(false)
		if err := p.register(ctx, leaseLost); err != nil {
			// register gives up only when ctx ends.
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// heartbeat sets the lease file's time to each renewal of the lease, and
// calls leaseLost when the lease is about to expire unrenewed. It returns
// nil when ctx ends.
func (p *presence) heartbeat(ctx context.Context, leaseLost func(context.Context)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pr := p.cur.Load()
		if pr == nil || p.leaseID.Load() == 0 {
			continue
		}
		t := pr.Renewed()
		if t.After(last) {
			if err := os.Chtimes(p.leaseFile, t, t); err != nil && errors.Is(err, os.ErrNotExist) {
				p.save(pr.Lease())
				_ = os.Chtimes(p.leaseFile, t, t)
			}
			last = t
			if p.expiring.Swap(false) {
				p.log.Info("machine lease renewed after all")
			}
		}
		if age := p.now().Sub(t); age > p.ttl-expiryGuard(p.ttl) && !p.expiring.Load() {
			p.expiring.Store(true)
			p.log.Warn("machine lease about to expire unrenewed (etcd unreachable?); units keep running, those with StopOnDisconnect=true stop", "since_renewal", age.Round(time.Millisecond), "agent_ttl", p.ttl)
			leaseLost(ctx)
		}
	}
}

// lease is the machine's lease, 0 while there is none (or it is expiring).
func (p *presence) lease() etcdkv.LeaseID {
	if p.expiring.Load() {
		return 0
	}
	return etcdkv.LeaseID(p.leaseID.Load())
}

// close revokes the lease: the machine and its states vanish at once.
func (p *presence) close(ctx context.Context) {
	if pr := p.cur.Load(); pr != nil {
		_ = pr.Close(ctx)
	}
	_ = os.Remove(p.leaseFile)
}

// release stops renewing the lease without revoking it.
func (p *presence) release() {
	if pr := p.cur.Load(); pr != nil {
		pr.Release()
	}
}

// alive touches <data_dir>/alive every aliveInterval until ctx ends: the
// shims' sign that fleetd runs (see aliveFileName). It returns nil when ctx
// ends.
func (p *presence) alive(ctx context.Context) error {
	path := filepath.Join(filepath.Dir(p.leaseFile), aliveFileName)
	tick := time.NewTicker(aliveInterval)
	defer tick.Stop()
	for {
		// The wall clock: the shims compare the file's time with theirs.
		now := time.Now()
		if err := os.Chtimes(path, now, now); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if f, cerr := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600); cerr == nil {
					f.Close()
				} else {
					p.log.Warn("writing the alive file", "err", cerr)
				}
			} else {
				p.log.Warn("touching the alive file", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
