package exec

import (
	"sort"
	"sync"
	"syscall"
)

// group is every process of one start of a unit: a fresh cgroup v2 when
// available (plus more if cgroup.kill had to be used and something must
// still be spawned), and always the process groups of the processes we
// started, which are what counts when cgroups are unavailable.
type group struct {
	r    *Runner
	unit string

	mu    sync.Mutex
	cgs   []*cgroup
	pgids map[int]struct{}
	known map[int]uint64 // pid -> start ticks, seen as members (pgid mode)
}

func (r *Runner) newGroup(unit string) *group {
	g := &group{r: r, unit: unit, pgids: map[int]struct{}{}, known: map[int]uint64{}}
	if r.cg != nil {
		r.cleanStale()
		if cg, err := r.cg.create(unit); err == nil {
			g.cgs = append(g.cgs, cg)
		} else {
			r.log.Debug("cgroup create failed; using process groups", "unit", unit, "err", err)
		}
	}
	return g
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
	cg, err := g.r.cg.create(g.unit)
	if err != nil {
		return nil
	}
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
	if sig == syscall.SIGKILL {
		for _, cg := range cgs {
			if !cg.killed && len(cg.pids()) > 0 {
				if err := cg.kill(); err != nil {
					g.r.log.Debug("cgroup.kill failed", "cgroup", cg.path, "err", err)
				}
			}
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
		}
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
