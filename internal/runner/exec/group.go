package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
)

// group is every process of one start of a unit: a fresh cgroup (v2, or
// v1 cgroups in the hierarchies the unit needs; plus more if cgroup.kill
// had to be used and something must still be spawned), and always the
// process groups of the processes we started, which are what counts when
// cgroups are unavailable.
type group struct {
	r    *Runner
	unit string

	plan   cgrp.Plan
	limits cgrp.Limits

	mu    sync.Mutex
	cgs   []*cgroup
	pgids map[int]struct{}
	known map[int]uint64 // pid -> start ticks, seen as members (pgid mode)
}

// newGroup makes the group of a start of unit with limits l. The warnings
// say which limits are not enforced, and why (for the unit's journal).
func (r *Runner) newGroup(unit string, l cgrp.Limits) (*group, []string) {
	g := &group{r: r, unit: unit, limits: l, pgids: map[int]struct{}{}, known: map[int]uint64{}}
	var warns []string
	if r.cg == nil {
		if l.Any() {
			var opts []string
			for _, c := range l.Controllers() {
				opts = append(opts, l.Options(c)...)
			}
			why := "cgroups are disabled"
			if r.cgErr != nil {
				why = r.cgErr.Error()
			}
			warns = append(warns, fmt.Sprintf("Resource limits not enforced: %s (%s); the unit runs without them.", strings.Join(opts, ", "), why))
		}
		return g, warns
	}
	r.cleanStale()
	g.plan = r.cg.Plan(l, r.opts.CgroupVersion == 1, r.opts.CgroupVersion == 2)
	if len(g.plan.Unenforced) > 0 {
		warns = append(warns, fmt.Sprintf("Resource limits not enforced: %s (%s); the unit runs without them.", strings.Join(g.plan.Unenforced, ", "), g.plan.Why))
	}
	cg, err := r.cg.create(unit, g.plan)
	if err != nil {
		r.log.Debug("cgroup create failed; using process groups", "unit", unit, "err", err)
		if l.Any() {
			warns = append(warns, fmt.Sprintf("Resource limits not enforced: cannot create the unit's cgroup: %v; the unit runs without them.", err))
		}
		return g, warns
	}
	warns = append(warns, cg.Apply(l)...)
	g.cgs = append(g.cgs, cg)
	return g, warns
}

// oomKills counts the processes of the group the kernel OOM-killed; exact
// is false when only memory.failcnt could be read (the limit was hit).
func (g *group) oomKills() (n int64, exact bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	exact = true
	for _, cg := range g.cgs {
		k, e := cg.OOMKills()
		n += k
		exact = exact && e
	}
	return n, exact
}

// spawnCgroup returns the cgroup new processes go into, creating a fresh
// one when the current one was killed through cgroup.kill.
func (g *group) spawnCgroup() *cgroup {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cgs) == 0 {
		return nil
	}
	cur := g.cgs[len(g.cgs)-1]
	if !cur.killed {
		return cur
	}
	cg, err := g.r.cg.create(g.unit, g.plan)
	if err != nil {
		return nil
	}
	cg.Apply(g.limits)
	g.cgs = append(g.cgs, cg)
	return cg
}

func (g *group) added(pid int) {
	g.mu.Lock()
	g.pgids[pid] = struct{}{}
	g.mu.Unlock()
}

// members lists the live (non-zombie) processes of the group, sorted.
func (g *group) members() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := map[int]struct{}{}
	if len(g.cgs) > 0 {
		for _, cg := range g.cgs {
			for _, pid := range cg.pids() {
				set[pid] = struct{}{}
			}
		}
	} else {
		procs := allProcs()
		children := map[int][]procStat{}
		for _, p := range procs {
			children[p.ppid] = append(children[p.ppid], p)
		}
		var queue []int
		for _, p := range procs {
			if p.state == 'Z' || p.state == 'X' {
				continue
			}
			_, inGroup := g.pgids[p.pgid]
			start, isKnown := g.known[p.pid]
			if inGroup || (isKnown && start == p.start) {
				set[p.pid] = struct{}{}
				queue = append(queue, p.pid)
			}
		}
		// Descendants that moved to a new session or group while their
		// parent is still ours.
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			for _, c := range children[pid] {
				if _, ok := set[c.pid]; ok || c.state == 'Z' || c.state == 'X' {
					continue
				}
				set[c.pid] = struct{}{}
				queue = append(queue, c.pid)
			}
		}
		for _, p := range procs {
			if _, ok := set[p.pid]; ok {
				g.known[p.pid] = p.start
			}
		}
	}
	out := make([]int, 0, len(set))
	for pid := range set {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}

// signal sends sig to every process of the group. SIGKILL uses
// cgroup.kill where possible.
func (g *group) signal(sig syscall.Signal) {
	members := g.members()
	g.mu.Lock()
	cgs := append([]*cgroup(nil), g.cgs...)
	// Signal whole process groups too (catches children forked since
	// members() looked), but only groups that still hold a member, so a
	// recycled PGID is never hit.
	var pgids []int
	seen := map[int]bool{}
	for _, pid := range members {
		if st, ok := readProcStat(pid); ok && !seen[st.pgid] {
			seen[st.pgid] = true
			if _, ours := g.pgids[st.pgid]; ours {
				pgids = append(pgids, st.pgid)
			}
		}
	}
	g.mu.Unlock()
	for _, cg := range cgs {
		if _, usedKill := cg.Signal(sig); usedKill {
			g.mu.Lock()
			cg.killed = true
			g.mu.Unlock()
		}
	}
	for _, pid := range members {
		syscall.Kill(pid, sig)
	}
	for _, pg := range pgids {
		syscall.Kill(-pg, sig)
	}
}

// release removes the group's cgroups; populated ones (KillMode=process
// leftovers) are retried later.
func (g *group) release() {
	g.mu.Lock()
	cgs := g.cgs
	g.cgs = nil
	g.mu.Unlock()
	for _, cg := range cgs {
		if err := cg.remove(); err != nil {
			g.r.mu.Lock()
			g.r.stale = append(g.r.stale, cg)
			g.r.mu.Unlock()
			continue
		}
		removeDeadParents(cg)
	}
}

// removeDeadParents removes the root directories of an adopted cgroup
// once empty, when the runner that made them is gone.
func removeDeadParents(cg *cgroup) {
	for _, d := range cg.Dirs() {
		parent := filepath.Dir(d)
		f := strings.SplitN(strings.TrimPrefix(filepath.Base(parent), cgroupPrefix), "-", 2)
		if !strings.HasPrefix(filepath.Base(parent), cgroupPrefix) || len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + f[0]); err == nil {
			continue
		}
		os.Remove(parent) // fails while not empty
	}
}

func (r *Runner) cleanStale() {
	r.mu.Lock()
	stale := r.stale
	r.stale = nil
	r.mu.Unlock()
	var keep []*cgroup
	for _, cg := range stale {
		if cg.remove() != nil {
			keep = append(keep, cg)
		}
	}
	if len(keep) > 0 {
		r.mu.Lock()
		r.stale = append(r.stale, keep...)
		r.mu.Unlock()
	}
}
