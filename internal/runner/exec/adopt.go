package exec

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
)

// unitRecord is <StateDir>/<unit>/unit.json: what a later runner needs to
// adopt a unit that is up (active) while its runner goes away.
type unitRecord struct {
	Name     string              `json:"name"`
	Hash     string              `json:"hash"`
	Options  []fleet.UnitOption  `json:"options"`
	BootID   string              `json:"bootID"`
	Sub      string              `json:"sub"` // running, exited
	Since    time.Time           `json:"since"`
	MainPID  int                 `json:"mainPID,omitempty"`
	Start    uint64              `json:"start,omitempty"`
	ShimDir  string              `json:"shimDir,omitempty"`
	Ident    string              `json:"ident,omitempty"`
	Cgroups  []string            `json:"cgroups,omitempty"` // v2 paths (older records)
	Groups   []cgrp.Group        `json:"groups,omitempty"`  // unit cgroups (v2 and v1)
	Limits   *cgrp.Limits        `json:"limits,omitempty"`
	Pgids    []int               `json:"pgids,omitempty"`
	Restarts int                 `json:"restarts,omitempty"`
	Execs    []runner.ExecResult `json:"execs,omitempty"`
}

const unitRecordFile = "unit.json"

// saveRecord records the unit as up (sub running or exited), so that a
// runner started later on the same state directory adopts it.
func (u *unit) saveRecord(rc *runCtx, sub string) {
	r := u.r
	if r.opts.StateDir == "" {
		return
	}
	rec := unitRecord{
		Name: u.name, Hash: rc.hash, Options: rc.opts, BootID: r.opts.BootID, Sub: sub,
		MainPID: rc.mainPID, ShimDir: rc.shimDir,
	}
	if rc.main != nil {
		rec.Ident = rc.main.ident
	}
	if rc.mainPID > 0 {
		if st, ok := readProcStat(rc.mainPID); ok {
			rec.Start = st.start
		}
	}
	rc.g.mu.Lock()
	for _, cg := range rc.g.cgs {
		rec.Groups = append(rec.Groups, cg.Group)
	}
	if rc.g.limits.Any() {
		l := rc.g.limits
		rec.Limits = &l
	}
	for pg := range rc.g.pgids {
		rec.Pgids = append(rec.Pgids, pg)
	}
	rc.g.mu.Unlock()
	sort.Ints(rec.Pgids)
	r.mu.Lock()
	rec.Since, rec.Restarts = u.st.Since, u.restarts
	rec.Execs = append([]runner.ExecResult(nil), u.execs...)
	r.mu.Unlock()
	dir := r.unitStateDir(u.name)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = writeJSONAtomic(filepath.Join(dir, unitRecordFile), rec)
	}
	if err != nil {
		r.log.Warn("cannot record unit for adoption", "unit", u.name, "err", err)
	}
}

// dropRecord forgets the unit's record and shim directories (the unit is
// down).
func (u *unit) dropRecord() {
	if u.r.opts.StateDir == "" {
		return
	}
	os.RemoveAll(u.r.unitStateDir(u.name))
}

// adoptAll loads every unit recorded as up by an earlier runner on the
// state directory and resumes supervising it without restarting it. Shims
// that no record refers to (a start that was cut short) are killed.
func (r *Runner) adoptAll() {
	dirs, _ := os.ReadDir(r.opts.StateDir)
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(r.opts.StateDir, d.Name())
		var rec unitRecord
		err := readJSON(filepath.Join(dir, unitRecordFile), &rec)
		ok := err == nil && rec.Name == d.Name() && rec.BootID == r.opts.BootID
		shims, _ := filepath.Glob(filepath.Join(dir, "shim-*"))
		for _, s := range shims {
			if ok && s == rec.ShimDir {
				continue
			}
			killShimMain(s)
			os.RemoveAll(s)
		}
		if !ok {
			r.log.Info("discarding a stale unit record", "dir", dir, "err", err)
			os.RemoveAll(dir)
			continue
		}
		r.adopt(rec)
	}
}

// killShimMain kills the process group of a shim's main process if it
// still runs.
func killShimMain(dir string) {
	var m shimMain
	if readJSON(filepath.Join(dir, shimMainFile), &m) != nil || m.PID <= 0 {
		return
	}
	if _, err := os.Stat(filepath.Join(dir, shimExitFile)); err == nil {
		return
	}
	if samePID(m.PID, m.Start) {
		syscall.Kill(-m.PID, syscall.SIGKILL)
	}
}

func (r *Runner) adopt(rec unitRecord) {
	if err := r.Load(context.Background(), runner.Unit{Name: rec.Name, Hash: rec.Hash, Options: rec.Options}); err != nil {
		r.log.Warn("cannot adopt unit", "unit", rec.Name, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.units[rec.Name]
	if u == nil {
		return
	}
	u.adopt = &rec
	u.grp = r.adoptGroup(rec)
	u.st.ActiveState, u.st.SubState, u.st.Since, u.st.MainPID = "active", rec.Sub, rec.Since, rec.MainPID
	u.restarts = rec.Restarts
	u.execs = rec.Execs
	u.startReq, u.stopReq = true, false
	u.result = "done"
	u.notifyAdoptedLocked()
	r.log.Info("adopted unit left running by an earlier fleetd", "unit", rec.Name, "main_pid", rec.MainPID, "sub", rec.Sub)
}

// adoptGroup rebuilds the process group of a recorded unit.
func (r *Runner) adoptGroup(rec unitRecord) *group {
	g := &group{r: r, unit: rec.Name, limits: cgrp.NoLimits(), pgids: map[int]struct{}{}, known: map[int]uint64{}}
	if rec.Limits != nil {
		g.limits = *rec.Limits
	}
	groups := rec.Groups
	for _, p := range rec.Cgroups {
		groups = append(groups, cgrp.Group{V2: p})
	}
	for _, cg := range groups {
		if cg.Exists() {
			g.cgs = append(g.cgs, &cgroup{Group: cg})
		}
	}
	if len(g.cgs) > 0 {
		last := g.cgs[len(g.cgs)-1]
		g.plan = cgrp.Plan{V2: last.V2 != ""}
		for c := range last.V1 {
			g.plan.V1 = append(g.plan.V1, c)
		}
		sort.Strings(g.plan.V1)
	}
	for _, pg := range rec.Pgids {
		g.pgids[pg] = struct{}{}
	}
	return g
}

func (u *unit) notifyAdoptedLocked() {
	u.pokeLocked()
	u.r.notifyLocked()
}

// takeAdopt returns (and clears) the record to adopt, if any.
func (u *unit) takeAdopt() *unitRecord {
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	rec := u.adopt
	u.adopt = nil
	return rec
}

// adopted resumes supervising a recorded unit: its processes keep running;
// the supervisor picks up in the running phase.
func (u *unit) adopted(rec *unitRecord) (string, event) {
	r := u.r
	cfg, err := parseConfig(rec.Name, rec.Options)
	if err != nil || cfg == nil {
		// Cannot happen for a unit that started; be safe.
		cfg, _ = parseConfig(rec.Name, nil)
	}
	r.mu.Lock()
	u.gen++
	rc := &runCtx{cfg: cfg, gen: u.gen, hash: rec.Hash, opts: rec.Options, shimDir: rec.ShimDir}
	r.mu.Unlock()
	if cfg == nil {
		return resResources, evDone
	}
	if err := u.prepare(rc); err != nil {
		u.logf("%s: %v", u.name, err)
	}
	r.mu.Lock()
	g := u.grp
	r.mu.Unlock()
	if g == nil {
		g = r.adoptGroup(*rec)
	}
	rc.g = g
	rc.mainPID = rec.MainPID
	if rec.ShimDir != "" && rec.MainPID > 0 {
		pr := &proc{pid: rec.MainPID, ident: rec.Ident, done: make(chan struct{})}
		gen := rc.gen
		go r.watchShim(rec.ShimDir, rec.MainPID, rec.Start, 0, pr, func(p *proc) {
			code, status := exitInfo(p.ws)
			end := r.opts.Now()
			r.mu.Lock()
			if u.gen == gen {
				for i := range u.execs {
					if u.execs[i].PID == p.pid && u.execs[i].End.IsZero() {
						u.execs[i].Code, u.execs[i].Status, u.execs[i].End = code, status, end
					}
				}
			}
			r.notifyLocked()
			r.mu.Unlock()
		})
		rc.main = pr
	}
	what := "main PID " + strconv.Itoa(rec.MainPID)
	if rec.MainPID <= 0 {
		what = strings.TrimSpace("state " + rec.Sub)
	}
	u.logf("Adopted %s (%s) left running by an earlier fleetd.", u.desc(), what)
	u.setPhase(phaseRun)
	return u.supervise(rc)
}
