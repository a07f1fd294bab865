package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

// Options configure a Runner.
type Options struct {
	// Journal receives every process's output and lifecycle lines; nil
	// discards them.
	Journal *journal.Journal
	// UnitsDir, if set, receives a copy of each loaded unit file
	// (<UnitsDir>/<name>), shown as the unit path in Status.
	UnitsDir string
	// Hostname, MachineID and BootID feed the %H, %m and %b specifiers;
	// empty ones are read from the system.
	Hostname, MachineID, BootID string
	Logger                      *slog.Logger
	Now                         func() time.Time
	// Env holds KEY=VALUE assignments given to every unit's processes,
	// after the base environment and before the unit's own Environment=
	// and EnvironmentFile= (which override them).
	Env []string
	// PrivilegedEnv holds assignments given, after Env, only to units
	// whose processes run as fleetd's own user (no User=): credentials
	// such as the admin token, which would give a unit with a lesser
	// User= more power than its user has.
	PrivilegedEnv []string
	// DisableCgroups forces process-group supervision even where a
	// writable cgroup hierarchy exists (resource limits are then not
	// enforced, except Limit*=).
	DisableCgroups bool
	// CgroupVersion restricts unit cgroups to cgroup v1 (1) or v2 (2); 0
	// picks per start (see doc.go).
	CgroupVersion int
	// StateDir, with Shim, makes units survive the runner (a restart of
	// fleetd): main processes of simple and exec services run under a
	// shim (Shim plus the shim's directory as argv; see shim.go), units
	// that are up are recorded in StateDir, and New adopts the units
	// recorded there by an earlier runner instead of leaving them alone.
	StateDir string
	Shim     []string
	ShimEnv  []string // extra environment of shim processes
	// Heartbeat, if set, is a file fleetd touches whenever it renews the
	// machine's lease; shims stop their unit when it is older than
	// HeartbeatTTL (the machine lost its lease: its units are moving).
	Heartbeat    string
	HeartbeatTTL time.Duration
	// ShimUnits is how many units one shim process supervises at most
	// over its life (0: 64; 1: a shim per unit).
	ShimUnits int
}

// ErrClosed is returned by a closed Runner.
var ErrClosed = errors.New("runner closed")

// Runner is the exec supervisor. It implements runner.Runner.
type Runner struct {
	opts  Options
	log   *slog.Logger
	cg    *cgroupRoot // nil: process groups only
	cgErr error       // why cg is nil
	rp    *reaper
	shims *shimPool
	quit  chan struct{}

	mu      sync.Mutex
	units   map[string]*unit
	stale   []*cgroup
	changed chan struct{}
	bcast   chan struct{}
	closed  bool
}

var _ runner.Runner = (*Runner)(nil)

// New starts a Runner. It makes this process a child subreaper so that
// orphaned service processes are re-parented to it and reaped.
func New(opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.MachineID == "" {
		if b, err := os.ReadFile("/etc/machine-id"); err == nil {
			opts.MachineID = strings.TrimSpace(string(b))
		}
	}
	if opts.BootID == "" {
		if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
			opts.BootID = strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
		}
	}
	if opts.UnitsDir != "" {
		if err := os.MkdirAll(opts.UnitsDir, 0o755); err != nil {
			return nil, fmt.Errorf("exec runner: %w", err)
		}
	}
	r := &Runner{
		opts:    opts,
		log:     opts.Logger,
		quit:    make(chan struct{}),
		units:   map[string]*unit{},
		changed: make(chan struct{}, 1),
		bcast:   make(chan struct{}),
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		r.log.Warn("cannot become a child subreaper; orphans will be reaped by init", "err", err)
	}
	if !opts.DisableCgroups {
		cg, err := newCgroupRoot(opts.CgroupVersion)
		if err != nil {
			r.cgErr = err
			r.log.Info("cgroups unavailable; supervising process groups", "err", err)
		} else {
			r.cg = cg
		}
	}
	r.rp = newReaper(r.kick)
	r.shims = newShimPool(r, opts.ShimUnits)
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("exec runner: %w", err)
		}
		r.adoptAll()
	}
	return r, nil
}

// UsesCgroups reports whether units get their own cgroups.
func (r *Runner) UsesCgroups() bool { return r.cg != nil }

// CgroupVersions reports whether unit cgroups can be made in cgroup v2
// and in v1 hierarchies.
func (r *Runner) CgroupVersions() (v2, v1 bool) {
	if r.cg == nil {
		return false, false
	}
	return r.cg.V2 != "", len(r.cg.V1) > 0
}

// kick wakes everything waiting for a state change or a process exit.
func (r *Runner) kick() {
	r.mu.Lock()
	close(r.bcast)
	r.bcast = make(chan struct{})
	r.mu.Unlock()
}

// notifyLocked announces a state change; r.mu must be held.
func (r *Runner) notifyLocked() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
	close(r.bcast)
	r.bcast = make(chan struct{})
}

func (r *Runner) bcastChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bcast
}

// Changed receives (coalesced) after any state change.
func (r *Runner) Changed() <-chan struct{} { return r.changed }

func serializeUnit(opts []fleet.UnitOption) string {
	var b strings.Builder
	section := ""
	for _, o := range opts {
		if o.Section != section {
			if section != "" {
				b.WriteByte('\n')
			}
			section = o.Section
			fmt.Fprintf(&b, "[%s]\n", section)
		}
		fmt.Fprintf(&b, "%s=%s\n", o.Name, o.Value)
	}
	return b.String()
}

// Load registers or replaces a unit. Invalid units load with LoadState
// "error".
func (r *Runner) Load(ctx context.Context, ru runner.Unit) error {
	if err := journal.ValidUnitName(ru.Name); err != nil {
		return fmt.Errorf("exec runner: %w", err)
	}
	cfg, loadErr := parseConfig(ru.Name, ru.Options)
	unitPath := ""
	if r.opts.UnitsDir != "" {
		unitPath = filepath.Join(r.opts.UnitsDir, ru.Name)
		if err := os.WriteFile(unitPath, []byte(serializeUnit(ru.Options)), 0o644); err != nil {
			r.log.Warn("cannot write unit file", "unit", ru.Name, "err", err)
			unitPath = ""
		}
	}
	loadState := "loaded"
	if loadErr != nil {
		loadState = "error"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	u := r.units[ru.Name]
	fresh := u == nil
	if fresh {
		u = &unit{
			r:    r,
			name: ru.Name,
			poke: make(chan struct{}, 1),
			done: make(chan struct{}),
		}
		u.st.ActiveState, u.st.SubState = "inactive", "dead"
		r.units[ru.Name] = u
	}
	u.cfg, u.loadErr, u.unitPath, u.opts = cfg, loadErr, unitPath, ru.Options
	u.st.LoadState, u.st.Hash = loadState, ru.Hash
	u.description = ru.Name
	if cfg != nil {
		// systemd expands specifiers in Description= and in every
		// dependency (BindsTo=web@%i.service).
		sp := specifiers{
			name:      ru.Name,
			hostname:  r.opts.Hostname,
			machineID: r.opts.MachineID,
			bootID:    r.opts.BootID,
		}
		if cfg.description != "" {
			u.description = sp.expand(cfg.description)
		}
		for _, deps := range []*[]string{&cfg.after, &cfg.requires, &cfg.wants, &cfg.bindsTo, &cfg.partOf} {
			for i, d := range *deps {
				(*deps)[i] = sp.expand(d)
			}
		}
	}
	r.notifyLocked()
	if fresh {
		go u.run()
	}
	return nil
}

// Start enqueues a start job. Starting an active unit is a no-op.
//
// The agent calls Start once per explicit start (fleetctl start, or a
// launched unit loaded here), never to retry. So a start of a unit that is
// down (inactive or failed) acts as `systemctl reset-failed` + `systemctl
// start`: it resets the start-limit counter (StartLimitBurst=), as an
// operator would to bring back a unit that hit its limit. Automatic
// restarts (Restart=) and starts pulled in by Requires=/Wants= count
// against the limit and never reset it.
func (r *Runner) Start(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, err := r.loadedLocked(name)
	if err != nil {
		return err
	}
	if u.phase == phaseIdle && !u.startReq {
		u.startLimit.reset()
	}
	u.requestStartLocked()
	return nil
}

// Stop enqueues a stop job. Stopping an inactive unit is a no-op.
func (r *Runner) Stop(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, err := r.loadedLocked(name)
	if err != nil {
		return err
	}
	u.requestStopLocked()
	return nil
}

// loadedLocked returns the unit loaded as name (r.mu held): ErrClosed once
// the runner is closed, runner.ErrNotLoaded when no unit has that name.
func (r *Runner) loadedLocked(name string) (*unit, error) {
	if r.closed {
		return nil, ErrClosed
	}
	u := r.units[name]
	if u == nil {
		return nil, fmt.Errorf("%w: %s", runner.ErrNotLoaded, name)
	}
	return u, nil
}

// Unload stops the unit, waits for it (bounded by ctx) and forgets it.
func (r *Runner) Unload(ctx context.Context, name string) error {
	r.mu.Lock()
	u, err := r.loadedLocked(name)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	u.unloading = true
	u.requestStopLocked()
	r.mu.Unlock()

	select {
	case <-u.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.mu.Lock()
	if r.units[name] == u {
		delete(r.units, name)
	}
	path := u.unitPath
	r.notifyLocked()
	r.mu.Unlock()
	if path != "" {
		os.Remove(path)
	}
	if r.opts.Journal != nil {
		// Its log stays on disk for status and journal; the open file
		// and lock go, so fds do not grow with every unit name ever run.
		if rerr := r.opts.Journal.Release(name); rerr != nil {
			r.opts.Logger.Debug("releasing the journal of an unloaded unit", "unit", name, "err", rerr)
		}
		// Journals of units no longer loaded here are kept within the
		// journal's retention limits (bounded work per call); those of
		// loaded units never go.
		loaded := func(unit string) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.units[unit] != nil
		}
		if perr := r.opts.Journal.Prune(loaded); perr != nil {
			r.opts.Logger.Debug("pruning the journals of unloaded units", "err", perr)
		}
	}
	return err
}

// propagateStopLocked requests a stop of every running unit that depends on
// name with BindsTo= or PartOf= (always), or Requires= (when name stopped
// rather than failed: a crash of a required unit does not stop its
// dependents, as in systemd), and returns them (r.mu held).
func (r *Runner) propagateStopLocked(name string, failed bool) []*unit {
	var out []*unit
	for _, v := range r.units {
		if v.name == name || v.cfg == nil {
			continue
		}
		bound := slices.Contains(v.cfg.bindsTo, name) || slices.Contains(v.cfg.partOf, name) ||
			(!failed && slices.Contains(v.cfg.requires, name))
		if !bound {
			continue
		}
		switch v.st.ActiveState {
		case "active", "activating", "reloading":
			v.requestStopLocked()
			out = append(out, v)
		}
	}
	return out
}

// States reports every loaded unit.
func (r *Runner) States() map[string]runner.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]runner.State, len(r.units))
	for n, u := range r.units {
		out[n] = u.st
	}
	return out
}

// Status returns the systemctl-status detail of a unit.
func (r *Runner) Status(name string) (runner.Status, error) {
	r.mu.Lock()
	u := r.units[name]
	if u == nil {
		r.mu.Unlock()
		return runner.Status{}, fmt.Errorf("%w: %s", runner.ErrNotLoaded, name)
	}
	st := runner.Status{
		Name:        name,
		Description: u.description,
		UnitPath:    u.unitPath,
		State:       u.st,
		Execs:       append([]runner.ExecResult(nil), u.execs...),
		Restarts:    u.restarts,
	}
	if u.loadErr != nil {
		st.Error = u.loadErr.Error()
	}
	u.timerStatusLocked(&st)
	g := u.grp
	r.mu.Unlock()
	if g != nil {
		for _, pid := range g.members() {
			st.Processes = append(st.Processes, runner.Process{PID: pid, Cmd: procCmdline(pid)})
		}
		sort.SliceStable(st.Processes, func(i, j int) bool {
			return st.Processes[i].PID == st.MainPID && st.Processes[j].PID != st.MainPID
		})
	}
	return st, nil
}

// StopAll stops every unit and waits until none is running (bounded by
// ctx).
func (r *Runner) StopAll(ctx context.Context) error {
	r.mu.Lock()
	for _, u := range r.units {
		u.requestStopLocked()
	}
	r.mu.Unlock()
	for {
		r.mu.Lock()
		busy := false
		for _, u := range r.units {
			if u.busyLocked() {
				busy = true
			}
		}
		bc := r.bcast
		r.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-bc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops supervising: processes keep running (use StopAll first to
// stop them). It waits for the supervisor goroutines, bounded by ctx.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	units := make([]*unit, 0, len(r.units))
	for _, u := range r.units {
		units = append(units, u)
	}
	r.mu.Unlock()
	close(r.quit)
	r.shims.close()
	var err error
	for _, u := range units {
		select {
		case <-u.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	r.rp.close()
	r.cleanStale()
	if r.cg != nil {
		r.cg.remove()
	}
	return err
}
