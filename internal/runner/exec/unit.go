package exec

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
)

// Phases of a unit's supervisor goroutine.
const (
	phaseIdle  = ""
	phaseStart = "start"
	phaseRun   = "run"
	phaseStop  = "stop"
)

// Results, in systemd's words.
const (
	resSuccess    = "success"
	resExitCode   = "exit-code"
	resSignal     = "signal"
	resCoreDump   = "core-dump"
	resTimeout    = "timeout"
	resResources  = "resources"
	resProtocol   = "protocol"
	resDependency = "dependency"
	resStartLimit = "start-limit-hit"
	resOOMKill    = "oom-kill"
)

type event int

const (
	evDone event = iota
	evTimeout
	evStop
	evQuit
	evShimStop // the main process's shim stopped the unit (stale heartbeat)
)

// unit is one loaded unit and its supervisor goroutine (run).
type unit struct {
	r    *Runner
	name string
	poke chan struct{} // cap 1: "look at your requests"
	done chan struct{} // closed when run returns

	// Guarded by r.mu.
	cfg         *config
	loadErr     error
	unitPath    string
	description string
	st          runner.State
	execs       []runner.ExecResult
	gen         int // start counter; tags exec history entries
	restarts    int
	phase       string
	startReq    bool
	stopReq     bool
	unloading   bool
	job         string // "start" while a start job is queued or running
	result      string // outcome of the last start job: done, failed, canceled
	grp         *group
	opts        []fleet.UnitOption // the loaded definition, recorded for adoption
	adopt       *unitRecord        // left running by an earlier runner: adopt instead of starting
	startLimit  rateLimit          // StartLimitIntervalSec=/StartLimitBurst=
	trigger     time.Time          // a timer's next elapse (SetTrigger)
}

// rateLimit is systemd's RateLimit (ratelimit_below), for the start limit.
type rateLimit struct {
	begin time.Time
	num   int
}

// below counts one start and reports whether it is within burst starts
// per interval. Either at 0 disables the limit.
func (rl *rateLimit) below(now time.Time, interval time.Duration, burst int) bool {
	if interval <= 0 || burst <= 0 {
		return true
	}
	if rl.begin.IsZero() || now.Sub(rl.begin) > interval {
		rl.begin, rl.num = now, 1
		return true
	}
	rl.num++
	return rl.num <= burst
}

func (rl *rateLimit) reset() { *rl = rateLimit{} }

// runCtx is what one start of a unit shares.
type runCtx struct {
	cfg     *config
	gen     int
	sp      specifiers
	env     *environ
	dir     string
	cred    *syscall.Credential
	g       *group
	main    *proc // our child main process (simple, exec, oneshot)
	mainPID int
	// exit of the main process, for ExecStopPost's environment
	exitCode, exitStatus string
	// what a later runner needs to adopt this start (adopt.go)
	hash    string
	opts    []fleet.UnitOption
	shimDir string // the main process's shim, if it runs under one
	// shimStopped: the shim ran the stop (ExecStop=, ExecStopPost=).
	shimStopped bool
}

func (u *unit) pokeLocked() {
	select {
	case u.poke <- struct{}{}:
	default:
	}
}

func (u *unit) requestStartLocked() {
	switch u.phase {
	case phaseIdle, phaseStop:
		u.startReq, u.stopReq = true, false
		u.job = "start"
	default: // already starting or running: cancel a stop not acted upon yet
		u.stopReq = false
	}
	u.pokeLocked()
}

func (u *unit) requestStopLocked() {
	if u.adopt != nil {
		// Adoption pending: it must happen, to stop the unit properly.
		u.stopReq = true
		u.pokeLocked()
		return
	}
	if u.startReq {
		u.startReq = false
		u.job, u.result = "", "canceled"
	}
	if u.phase != phaseIdle {
		u.stopReq = true
	}
	u.pokeLocked()
}

// busyLocked reports whether the unit has processes or work in flight.
func (u *unit) busyLocked() bool { return u.phase != phaseIdle || u.startReq }

func (u *unit) stopRequested() bool {
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	return u.stopReq || u.unloading
}

func (u *unit) setPhase(p string) {
	u.r.mu.Lock()
	u.phase = p
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

func (u *unit) setState(active, sub string) {
	u.r.mu.Lock()
	was := u.st.ActiveState
	if was != active {
		u.st.Since = u.r.opts.Now()
	}
	u.st.ActiveState, u.st.SubState = active, sub
	var stopped []*unit
	if was != active && (active == "inactive" || active == "failed") && was != "inactive" && was != "failed" {
		stopped = u.r.propagateStopLocked(u.name, active == "failed")
	}
	u.r.notifyLocked()
	u.r.mu.Unlock()
	for _, d := range stopped {
		d.logf("Stopping %s: it is bound to %s, which %s.", d.desc(), u.name, map[bool]string{true: "failed", false: "stopped"}[active == "failed"])
	}
}

// setExit records how the main process of this run ended (State.Exit).
func (u *unit) setExit(code string, status int) {
	u.r.mu.Lock()
	u.st.Exit = "code=" + code + ", status=" + runner.ExitStatusText(code, status)
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

// setResult sets the unit's Result (systemd's: success, exit-code,
// signal, core-dump, timeout, oom-kill, start-limit-hit ...).
func (u *unit) setResult(res string) {
	if res == "" {
		return
	}
	u.r.mu.Lock()
	u.st.Result = res
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

// oomResult turns a failure (exit-code, signal, core-dump) into oom-kill
// when the kernel OOM-killed a process of the unit's cgroup (its
// MemoryMax=), as systemd does; the journal says so.
func (u *unit) oomResult(rc *runCtx, res string) string {
	switch res {
	case resExitCode, resSignal, resCoreDump:
	default:
		return res
	}
	n, exact := rc.g.oomKills()
	if n == 0 {
		return res
	}
	if !exact && !(rc.exitCode == "killed" && rc.exitStatus == strconv.Itoa(int(syscall.SIGKILL))) {
		return res
	}
	u.logf("%s: A process of this unit has been killed by the OOM killer.", u.name)
	return resOOMKill
}

func (u *unit) setMainPID(pid int) {
	u.r.mu.Lock()
	u.st.MainPID = pid
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

func (u *unit) finishJob(ok bool) {
	u.r.mu.Lock()
	if u.job == "start" {
		u.job = ""
	}
	u.result = "failed"
	if ok {
		u.result = "done"
	}
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

func (u *unit) desc() string {
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	return u.description
}

// logf writes a lifecycle line to the unit's journal.
func (u *unit) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	u.r.log.Debug(msg, "unit", u.name)
	if j := u.r.opts.Journal; j != nil {
		if err := j.Log(u.name, "fleetd", os.Getpid(), msg); err != nil {
			u.r.log.Warn("journal write failed", "unit", u.name, "err", err)
		}
	}
}

func deadlineAfter(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// waitFor waits until done is closed or cond holds (checked on every
// state change or process exit, and every interval if non-zero), the
// deadline passes, a stop is requested (if stoppable) or the runner
// closes.
func (u *unit) waitFor(done <-chan struct{}, cond func() bool, deadline time.Time, stoppable bool, interval time.Duration) event {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	var tick <-chan time.Time
	if cond != nil && interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		// Only a condition on other state needs waking at every state
		// change of any unit (a broadcast: with many units, waking them
		// all at each change of one would cost their number squared).
		// Stop requests poke the unit; done and the deadline are
		// channels of their own.
		var bc <-chan struct{}
		if cond != nil {
			bc = u.r.bcastChan()
		}
		if done != nil {
			select {
			case <-done:
				return evDone
			default:
			}
		}
		if cond != nil && cond() {
			return evDone
		}
		if stoppable && u.stopRequested() {
			return evStop
		}
		select {
		case <-done:
			return evDone
		case <-timeout:
			return evTimeout
		case <-u.poke:
		case <-tick:
		case <-bc:
		case <-u.r.quit:
			return evQuit
		}
	}
}

// run is the unit's supervisor goroutine.
func (u *unit) run() {
	defer close(u.done)
	for {
		u.r.mu.Lock()
		if u.unloading && u.adopt == nil {
			u.r.mu.Unlock()
			return
		}
		start := u.startReq
		u.startReq = false
		if u.adopt == nil {
			u.stopReq = false
		}
		if start {
			u.phase = phaseStart
		}
		u.r.mu.Unlock()
		if start {
			if u.lifecycle() == evQuit {
				return
			}
			u.setPhase(phaseIdle)
			continue
		}
		select {
		case <-u.poke:
		case <-u.r.quit:
			return
		}
	}
}

func shouldRestart(policy, res string) bool {
	if res == resDependency {
		return false
	}
	switch policy {
	case "always":
		return true
	case "on-success":
		return res == resSuccess
	case "on-failure":
		return res != resSuccess
	case "on-abnormal":
		return res == resSignal || res == resCoreDump || res == resTimeout || res == resOOMKill
	case "on-abort":
		return res == resSignal || res == resCoreDump || res == resOOMKill
	}
	return false
}

// lifecycle runs start, run and stop, and restarts as Restart= says,
// until the unit is down for good.
func (u *unit) lifecycle() event {
	for {
		if !u.startAllowed() {
			u.logf("%s: Start request repeated too quickly.", u.name)
			u.logf("%s: Failed with result '%s'.", u.name, resStartLimit)
			u.logf("Failed to start %s.", u.desc())
			u.finishJob(false)
			u.setResult(resStartLimit)
			u.setState("failed", "failed")
			return evDone
		}
		res, ev := u.startOnce()
		if ev == evQuit {
			return ev
		}
		u.r.mu.Lock()
		cfg := u.cfg
		requested := ev == evStop || ev == evShimStop || u.stopReq || u.unloading
		u.r.mu.Unlock()
		restart := !requested && cfg != nil && u.loadErrNil() && shouldRestart(cfg.restart, res)
		switch {
		case res != resSuccess:
			u.logf("%s: Failed with result '%s'.", u.name, res)
		case !requested:
			u.logf("%s: Deactivated successfully.", u.name)
		}
		if requested && ev != evShimStop { // the shim logged its own
			u.logf("Stopped %s.", u.desc())
		}
		u.setResult(res)
		switch {
		case restart:
			u.setState("activating", "auto-restart")
		case res == resSuccess:
			u.setState("inactive", "dead")
			return evDone
		default:
			u.setState("failed", "failed")
			return evDone
		}
		u.setPhase(phaseRun)
		switch u.waitFor(nil, nil, deadlineAfter(cfg.restartSec), true, 0) {
		case evQuit:
			return evQuit
		case evStop:
			u.setState("inactive", "dead")
			return evDone
		}
		u.r.mu.Lock()
		u.restarts++
		n := u.restarts
		u.phase = phaseStart
		u.r.mu.Unlock()
		u.logf("%s: Scheduled restart job, restart counter is at %d.", u.name, n)
	}
}

// startAllowed counts a start (an explicit one or a restart) against the
// unit's start limit. Adopting a unit an earlier runner started is not a
// start.
func (u *unit) startAllowed() bool {
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	if u.adopt != nil || u.cfg == nil {
		return true
	}
	return u.startLimit.below(time.Now(), u.cfg.startLimitInterval, u.cfg.startLimitBurst)
}

func (u *unit) loadErrNil() bool {
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	return u.loadErr == nil
}

// mainResult classifies a main process exit.
func mainResult(typ string, code string, status int, ignore bool) string {
	switch {
	case code == "exited" && (status == 0 || ignore):
		return resSuccess
	case code == "exited":
		return resExitCode
	case code == "dumped":
		return resCoreDump
	case typ != "oneshot" && (status == int(syscall.SIGHUP) || status == int(syscall.SIGINT) ||
		status == int(syscall.SIGTERM) || status == int(syscall.SIGPIPE)):
		return resSuccess
	}
	return resSignal
}

// startOnce starts the unit, supervises it while it runs and takes it
// down again. It returns the service result and evStop if a stop request
// ended it.
func (u *unit) startOnce() (string, event) {
	if rec := u.takeAdopt(); rec != nil {
		return u.adopted(rec)
	}
	u.r.mu.Lock()
	cfg, loadErr := u.cfg, u.loadErr
	u.gen++
	rc := &runCtx{cfg: cfg, gen: u.gen, hash: u.st.Hash, opts: u.opts}
	u.execs = nil
	u.st.MainPID = 0
	u.st.Result = resSuccess
	desc := u.description
	u.r.mu.Unlock()

	if loadErr != nil {
		u.logf("%s: Unit configuration has fatal error, unit will not be started: %v", u.name, loadErr)
		u.logf("Failed to start %s.", desc)
		u.finishJob(false)
		return resResources, evDone
	}
	if cfg.timer != nil {
		return u.runTimer(desc)
	}
	if ok, ev := u.startDeps(cfg); !ok {
		u.finishJob(false)
		switch ev {
		case evQuit:
			return "", evQuit
		case evStop:
			return resSuccess, evStop
		}
		u.logf("Dependency failed for %s.", desc)
		return resDependency, evDone
	}

	var warns []string
	rc.g, warns = u.r.newGroup(u.name, cfg.limits)
	u.r.mu.Lock()
	u.grp = rc.g
	u.r.mu.Unlock()
	for _, w := range warns {
		u.logf("%s: %s", u.name, w)
	}

	u.logf("Starting %s...", desc)
	if len(cfg.exec[kindStartPre]) > 0 {
		u.setState("activating", "start-pre")
	} else {
		u.setState("activating", "start")
	}
	fail := func(res string) (string, event) {
		res = u.oomResult(rc, res)
		u.finishJob(false)
		res, ev := u.stopSeq(rc, false, res)
		u.logf("Failed to start %s.", desc)
		return res, ev
	}
	if err := u.prepare(rc); err != nil {
		u.logf("%s: %v", u.name, err)
		var se *spawnError
		if errors.As(err, &se) && se.status != 0 {
			u.recordFailedSpawn(rc, kindStart, "", se.status)
			return fail(resExitCode)
		}
		return fail(resResources)
	}
	deadline := deadlineAfter(cfg.timeoutStart)

	// handle deals with the events of a start phase; it returns true when
	// the start is over (with the result and event to return).
	var outRes string
	var outEv event
	handle := func(ev event, what string) bool {
		switch ev {
		case evQuit:
			outRes, outEv = "", evQuit
		case evStop:
			u.finishJob(false)
			outRes, outEv = u.stopOnRequest(rc, false)
		case evTimeout:
			u.logf("%s: %s operation timed out. Terminating.", u.name, what)
			outRes, outEv = fail(resTimeout)
		default:
			return false
		}
		return true
	}
	runList := func(kind, sub, what string) (bool, string, event) {
		lines := cfg.exec[kind]
		if len(lines) > 0 {
			u.setState("activating", sub)
		}
		for _, l := range lines {
			ok, ev := u.runControl(rc, kind, l, deadline, true, nil)
			if handle(ev, what) {
				return false, outRes, outEv
			}
			if !ok && !l.ignoreFailure {
				res, ev := fail(resExitCode)
				return false, res, ev
			}
		}
		return true, "", evDone
	}

	if ok, res, ev := runList(kindStartPre, "start-pre", "Start-pre"); !ok {
		return res, ev
	}
	u.setState("activating", "start")

	switch cfg.typ {
	case "oneshot":
		for _, l := range cfg.exec[kindStart] {
			p, err := u.spawnExec(rc, kindStart, l, nil)
			if err != nil {
				if l.ignoreFailure {
					continue
				}
				return fail(resExitCode)
			}
			rc.main, rc.mainPID = p, p.pid
			u.setMainPID(p.pid)
			ev := u.waitFor(p.done, nil, deadline, true, 0)
			if handle(ev, "Start") {
				return outRes, outEv
			}
			code, status := exitInfo(p.ws)
			rc.exitCode, rc.exitStatus = code, strconv.Itoa(status)
			u.setExit(code, status)
			rc.main, rc.mainPID = nil, 0
			u.setMainPID(0)
			if res := mainResult(cfg.typ, code, status, l.ignoreFailure); res != resSuccess {
				u.logf("%s: Main process exited, code=%s, status=%s", u.name, code, runner.ExitStatusText(code, status))
				return fail(res)
			}
		}
	case "forking":
		l := cfg.exec[kindStart][0]
		ok, ev := u.runControl(rc, kindStart, l, deadline, true, nil)
		if handle(ev, "Start") {
			return outRes, outEv
		}
		if !ok && !l.ignoreFailure {
			return fail(resExitCode)
		}
		if cfg.pidFile != "" {
			pid, err := u.readPIDFile(rc, deadline)
			if err != nil {
				u.logf("%s: Can't open PID file %s (yet?) after start: %v", u.name, rc.sp.expand(cfg.pidFile), err)
				return fail(resProtocol)
			}
			rc.mainPID = pid
		} else if cfg.guessMainPID {
			rc.mainPID = guessMainPID(rc.g.members())
		}
		u.setMainPID(rc.mainPID)
	default: // simple, exec
		l := cfg.exec[kindStart][0]
		p, err := u.spawnExec(rc, kindStart, l, nil)
		if err != nil {
			return fail(resExitCode)
		}
		rc.main, rc.mainPID = p, p.pid
		u.setMainPID(p.pid)
	}

	if ok, res, ev := runList(kindStartPost, "start-post", "Start-post"); !ok {
		return res, ev
	}
	u.finishJob(true)
	if cfg.typ == "oneshot" {
		u.logf("Finished %s.", desc)
	} else {
		u.logf("Started %s.", desc)
	}
	u.setPhase(phaseRun)
	return u.supervise(rc)
}

// supervise runs the unit while it is up: it waits for the main process
// (or the whole group) to go away, or for a stop request, and takes the
// unit down.
func (u *unit) supervise(rc *runCtx) (string, event) {
	cfg := rc.cfg
	res := resSuccess
	switch {
	case cfg.typ == "oneshot":
	case rc.main != nil:
		u.setState("active", "running")
		u.saveRecord(rc, "running")
		switch u.waitFor(rc.main.done, nil, time.Time{}, true, 0) {
		case evQuit:
			return "", evQuit
		case evStop:
			return u.stopOnRequest(rc, true)
		}
		code, status := exitInfo(rc.main.ws)
		rc.exitCode, rc.exitStatus = code, strconv.Itoa(status)
		u.setExit(code, status)
		if rc.main.byShim {
			// Stopped as if requested, ExecStop= and ExecStopPost= run by
			// the shim: only release what is left.
			rc.shimStopped = true
			rc.main, rc.mainPID = nil, 0
			u.setMainPID(0)
			res, ev := u.stopSeq(rc, false, resSuccess)
			if ev == evQuit {
				return res, ev
			}
			return res, evShimStop
		}
		res = mainResult(cfg.typ, code, status, cfg.exec[kindStart][0].ignoreFailure)
		if res != resSuccess {
			u.logf("%s: Main process exited, code=%s, status=%s", u.name, code, runner.ExitStatusText(code, status))
			res = u.oomResult(rc, res)
		}
		rc.main, rc.mainPID = nil, 0
		u.setMainPID(0)
	default: // forking
		u.setState("active", "running")
		u.saveRecord(rc, "running")
		gone := func() bool {
			if rc.mainPID > 0 {
				return !alive(rc.mainPID)
			}
			return len(rc.g.members()) == 0
		}
		switch u.waitFor(nil, gone, time.Time{}, true, 500*time.Millisecond) {
		case evQuit:
			return "", evQuit
		case evStop:
			return u.stopOnRequest(rc, true)
		}
		if rc.mainPID > 0 {
			u.r.rp.reap()
			if ws, ok := u.r.rp.exitOf(rc.mainPID); ok {
				code, status := exitInfo(ws)
				rc.exitCode, rc.exitStatus = code, strconv.Itoa(status)
				res = mainResult(cfg.typ, code, status, false)
				if res != resSuccess {
					u.logf("%s: Main process exited, code=%s, status=%s", u.name, code, runner.ExitStatusText(code, status))
					res = u.oomResult(rc, res)
				}
			}
			rc.mainPID = 0
			u.setMainPID(0)
		}
	}
	if res == resSuccess && cfg.remainAfterExit {
		u.setState("active", "exited")
		u.saveRecord(rc, "exited")
		switch u.waitFor(nil, nil, time.Time{}, true, 0) {
		case evQuit:
			return "", evQuit
		}
		return u.stopOnRequest(rc, true)
	}
	return u.stopSeq(rc, res == resSuccess, res)
}

// stopOnRequest takes a unit down because a stop was asked for.
func (u *unit) stopOnRequest(rc *runCtx, runExecStop bool) (string, event) {
	u.logf("Stopping %s...", u.desc())
	res, ev := u.stopSeq(rc, runExecStop, resSuccess)
	if ev == evQuit {
		return res, ev
	}
	return res, evStop
}

func guessMainPID(members []int) int {
	self := os.Getpid()
	var ours []int
	for _, pid := range members {
		if st, ok := readProcStat(pid); ok && st.ppid == self {
			ours = append(ours, pid)
		}
	}
	switch {
	case len(ours) == 1:
		return ours[0]
	case len(members) == 1:
		return members[0]
	}
	return 0
}

func (u *unit) readPIDFile(rc *runCtx, deadline time.Time) (int, error) {
	path := rc.sp.expand(rc.cfg.pidFile)
	if !strings.HasPrefix(path, "/") {
		path = "/run/" + path
	}
	limit := time.Now().Add(5 * time.Second)
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
			if perr == nil && pid > 0 {
				return pid, nil
			}
			err = fmt.Errorf("invalid PID file content %q", strings.TrimSpace(string(b)))
		}
		if time.Now().After(limit) {
			return 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *unit) recordFailedSpawn(rc *runCtx, kind, cmd string, status int) {
	now := u.r.opts.Now()
	u.r.mu.Lock()
	if u.gen == rc.gen {
		u.execs = append(u.execs, runner.ExecResult{Kind: kind, Cmd: cmd, Code: "exited", Status: status, Start: now, End: now})
	}
	u.r.notifyLocked()
	u.r.mu.Unlock()
}

// spawnExec starts one Exec line and records it in the exec history.
func (u *unit) spawnExec(rc *runCtx, kind string, l execLine, extra map[string]string) (*proc, error) {
	env := rc.env
	if len(extra) > 0 {
		env = env.clone()
		for k, v := range extra {
			env.set(k, v)
		}
	}
	display, path, argv, err := commandLine(l, rc.sp, env)
	if err != nil {
		u.logf("%s: Failed to execute %s: %v", u.name, display, err)
		var se *spawnError
		status := 203
		if errors.As(err, &se) {
			status = se.status
		}
		u.recordFailedSpawn(rc, kind, display, status)
		return nil, err
	}
	now := u.r.opts.Now()
	u.r.mu.Lock()
	idx := len(u.execs)
	u.execs = append(u.execs, runner.ExecResult{Kind: kind, Cmd: display, Start: now})
	u.r.mu.Unlock()
	gen := rc.gen
	setExec := func(f func(e *runner.ExecResult)) {
		u.r.mu.Lock()
		if u.gen == gen && idx < len(u.execs) {
			f(&u.execs[idx])
		}
		u.r.notifyLocked()
		u.r.mu.Unlock()
	}
	start := u.startProcess
	if kind == kindStart && (rc.cfg.typ == "simple" || rc.cfg.typ == "exec") && u.r.usesShims() {
		start = u.startShimProcess // the main process outlives fleetd
	}
	p, err := start(rc, path, argv, env.list(), func(p *proc) {
		code, status := exitInfo(p.ws)
		end := u.r.opts.Now()
		setExec(func(e *runner.ExecResult) { e.PID, e.Code, e.Status, e.End = p.pid, code, status, end })
	})
	if err != nil {
		status := 203
		var se *spawnError
		if errors.As(err, &se) {
			status = se.status
		}
		u.logf("%s: Failed to execute %s: %v", u.name, display, err)
		end := u.r.opts.Now()
		setExec(func(e *runner.ExecResult) { e.Code, e.Status, e.End = "exited", status, end })
		return nil, err
	}
	setExec(func(e *runner.ExecResult) { e.PID = p.pid })
	return p, nil
}

// runControl runs one control command to completion. ok reports a zero
// exit; ev is evDone unless the deadline, a stop request (if stoppable)
// or the runner's shutdown came first (the process is then left running,
// for the caller to kill with the rest of the group).
func (u *unit) runControl(rc *runCtx, kind string, l execLine, deadline time.Time, stoppable bool, extra map[string]string) (bool, event) {
	p, err := u.spawnExec(rc, kind, l, extra)
	if err != nil {
		return false, evDone
	}
	if ev := u.waitFor(p.done, nil, deadline, stoppable, 0); ev != evDone {
		return false, ev
	}
	code, status := exitInfo(p.ws)
	ok := code == "exited" && status == 0
	if !ok && !l.ignoreFailure {
		u.logf("%s: Control process exited, code=%s, status=%s", u.name, code, runner.ExitStatusText(code, status))
	}
	return ok, evDone
}

// runStopCommands runs the ExecStop= or ExecStopPost= lines (kind) in
// turn, all within TimeoutStopSec=. When they time out it logs timedOut
// and returns resTimeout; evQuit when the runner shuts down; else res.
func (u *unit) runStopCommands(rc *runCtx, kind string, lines []execLine, extra map[string]string, timedOut, res string) (string, event) {
	deadline := deadlineAfter(rc.cfg.timeoutStop)
	for _, l := range lines {
		switch _, ev := u.runControl(rc, kind, l, deadline, false, extra); ev {
		case evQuit:
			return res, ev
		case evTimeout:
			u.logf("%s: %s", u.name, timedOut)
			return resTimeout, evDone
		}
	}
	return res, evDone
}

// stopSeq runs ExecStop= (if runExecStop), kills what is left as
// KillMode= says, runs ExecStopPost= and releases the group. It returns
// the (possibly worsened) result.
func (u *unit) stopSeq(rc *runCtx, runExecStop bool, res string) (string, event) {
	u.setPhase(phaseStop)
	cfg := rc.cfg
	if stops := cfg.exec[kindStop]; runExecStop && len(stops) > 0 {
		u.setState("deactivating", "stop")
		extra := map[string]string{}
		if rc.mainPID > 0 {
			extra["MAINPID"] = strconv.Itoa(rc.mainPID)
		}
		var ev event
		if res, ev = u.runStopCommands(rc, kindStop, stops, extra, "Stopping timed out. Terminating.", res); ev == evQuit {
			return res, ev
		}
	}
	res, ev := u.killPhase(rc, res, "stop-sigterm", "stop-sigkill")
	if ev == evQuit {
		return res, ev
	}
	if posts := cfg.exec[kindStopPost]; len(posts) > 0 && !rc.shimStopped {
		u.setState("deactivating", "stop-post")
		extra := map[string]string{"SERVICE_RESULT": res}
		if rc.exitCode != "" {
			extra["EXIT_CODE"], extra["EXIT_STATUS"] = rc.exitCode, rc.exitStatus
		}
		if res, ev = u.runStopCommands(rc, kindStopPost, posts, extra, "State 'stop-post' timed out. Terminating.", res); ev == evQuit {
			return res, ev
		}
		// Whatever ExecStopPost= left behind.
		if res, ev = u.killPhase(rc, res, "stop-sigterm", "stop-sigkill"); ev == evQuit {
			return res, ev
		}
	}
	rc.g.release()
	u.dropRecord()
	u.r.mu.Lock()
	if u.grp == rc.g {
		u.grp = nil
	}
	u.st.MainPID = 0
	u.r.notifyLocked()
	u.r.mu.Unlock()
	return res, evDone
}

// killPhase sends KillSignal= as KillMode= says, waits TimeoutStopSec=
// and escalates to SIGKILL if SendSIGKILL= allows.
func (u *unit) killPhase(rc *runCtx, res, subTerm, subKill string) (string, event) {
	cfg := rc.cfg
	mode := cfg.killMode
	if mode == "none" {
		return res, evDone
	}
	mainAlive := func() bool {
		if rc.main != nil {
			select {
			case <-rc.main.done:
				return false
			default:
				return true
			}
		}
		return rc.mainPID > 0 && alive(rc.mainPID)
	}
	groupGone := func() bool { return !mainAlive() && len(rc.g.members()) == 0 }
	gone := groupGone
	if mode != "control-group" {
		gone = func() bool { return !mainAlive() }
	}
	send := func(sig syscall.Signal) {
		if mode == "control-group" || (mode == "mixed" && sig == syscall.SIGKILL) {
			rc.g.signal(sig)
			return
		}
		if rc.mainPID > 0 {
			syscall.Kill(rc.mainPID, sig)
		}
	}
	if !gone() {
		u.setState("deactivating", subTerm)
		send(cfg.killSignal)
		if cfg.killSignal != syscall.SIGKILL && cfg.killSignal != syscall.SIGCONT {
			send(syscall.SIGCONT)
		}
		ev := u.waitFor(nil, gone, deadlineAfter(cfg.timeoutStop), false, 50*time.Millisecond)
		if ev == evQuit {
			return res, ev
		}
		if ev == evTimeout {
			if !cfg.sendSIGKILL {
				u.logf("%s: State '%s' timed out. Skipping SIGKILL.", u.name, subTerm)
				return resTimeout, evDone
			}
			u.logf("%s: State '%s' timed out. Killing.", u.name, subTerm)
			res = resTimeout
			u.setState("deactivating", subKill)
			send(syscall.SIGKILL)
			wait := cfg.timeoutStop
			if wait <= 0 || wait > 30*time.Second {
				wait = 30 * time.Second
			}
			switch u.waitFor(nil, gone, deadlineAfter(wait), false, 50*time.Millisecond) {
			case evQuit:
				return res, evQuit
			case evTimeout:
				u.logf("%s: Processes still around after SIGKILL. Ignoring.", u.name)
			}
		}
	}
	if mode == "mixed" && !groupGone() {
		rc.g.signal(syscall.SIGKILL)
		if u.waitFor(nil, groupGone, deadlineAfter(30*time.Second), false, 50*time.Millisecond) == evQuit {
			return res, evQuit
		}
	}
	return res, evDone
}

// startDeps starts Requires= and Wants= units and waits for After= units
// with a start job in flight. ok is false if a required unit is missing
// or did not come up (ev evDone), or on stop/quit.
func (u *unit) startDeps(cfg *config) (bool, event) {
	r := u.r
	r.mu.Lock()
	for _, d := range cfg.requires {
		du := r.units[d]
		if du == nil {
			// Not a fleet unit on this machine (docker.service, say): the
			// host provides it, as systemd would. Fleet units this one
			// needs are placed here with MachineOf=.
			u.logf("%s: %s is not managed by fleet here; assuming the host provides it.", u.name, d)
			continue
		}
		if du != u {
			du.requestStartLocked()
		}
	}
	for _, d := range cfg.wants {
		if du := r.units[d]; du != nil && du != u {
			du.requestStartLocked()
		}
	}
	r.mu.Unlock()
	var after []string
	for _, d := range cfg.after {
		if d != u.name {
			after = append(after, d)
		}
	}
	if len(after) == 0 {
		return true, evDone
	}
	settled := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, d := range after {
			if du := r.units[d]; du != nil && (du.job == "start" || du.startReq) {
				return false
			}
		}
		return true
	}
	if ev := u.waitFor(nil, settled, time.Time{}, true, 0); ev != evDone {
		return false, ev
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range cfg.requires {
		if !contains(after, d) {
			continue
		}
		du := r.units[d]
		if du == nil {
			continue // provided by the host (see above)
		}
		if !(du.st.ActiveState == "active" || du.result == "done") {
			return false, evDone
		}
	}
	return true, evDone
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
