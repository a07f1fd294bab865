package exec

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

// The shim's own stop of its unit, when fleetd is gone (heartbeat stale):
// the runner's stopSeq (unit.go) without the runner.

// shimMaxWait bounds each wait of a shim's stop: TimeoutStopSec=0 or
// infinity, or anything longer, waits this long.
const shimMaxWait = 90 * time.Second

// stopUnit runs ExecStop=, kills what is left as KillMode=, KillSignal=,
// TimeoutStopSec= and SendSIGKILL= say, runs ExecStopPost= and kills what
// that left.
func (sh *shim) stopUnit() {
	spec := sh.spec
	g := sh.group()
	wait := spec.TimeoutStop
	if wait <= 0 || wait > shimMaxWait {
		wait = shimMaxWait
	}
	desc := spec.Description
	if desc == "" {
		desc = spec.Unit
	}
	sh.log("Stopping %s...", desc)
	res := resSuccess
	if len(spec.Stop) > 0 {
		deadline := time.Now().Add(wait)
		var extra []string
		if sh.mainAlive() {
			extra = append(extra, "MAINPID="+strconv.Itoa(sh.pid))
		}
		for _, c := range spec.Stop {
			if _, timedOut := sh.runControl(g, c, extra, deadline); timedOut {
				sh.log("%s: Stopping timed out. Terminating.", spec.Unit)
				res = resTimeout
				break
			}
		}
	}
	res = sh.killPhase(g, res, wait)
	if len(spec.StopPost) > 0 {
		deadline := time.Now().Add(wait)
		extra := []string{"SERVICE_RESULT=" + res}
		if !sh.mainAlive() {
			code, status := exitInfo(sh.mainWS)
			extra = append(extra, "EXIT_CODE="+code, "EXIT_STATUS="+strconv.Itoa(status))
		}
		for _, c := range spec.StopPost {
			if _, timedOut := sh.runControl(g, c, extra, deadline); timedOut {
				sh.log("%s: State 'stop-post' timed out. Terminating.", spec.Unit)
				res = resTimeout
				break
			}
		}
		res = sh.killPhase(g, res, wait)
	}
	if res != resSuccess {
		sh.log("%s: Failed with result '%s'.", spec.Unit, res)
	}
	sh.log("Stopped %s.", desc)
}

// group is the unit's processes as the shim sees them: its cgroup, else
// the process groups of the main and control processes and their
// descendants.
func (sh *shim) group() *group {
	g := &group{
		r:     &Runner{log: slog.New(slog.DiscardHandler)},
		unit:  sh.spec.Unit,
		pgids: map[int]struct{}{sh.pid: {}},
		known: map[int]uint64{},
	}
	if sh.cg != nil {
		if sh.cg.Exists() {
			g.cgs = []*cgroup{sh.cg}
		}
	}
	return g
}

func (sh *shim) mainAlive() bool {
	select {
	case <-sh.mainDone:
		return false
	default:
		return true
	}
}

// waitUntil polls cond until it holds (true) or the deadline passes.
func waitUntil(cond func() bool, deadline time.Time) bool {
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// killPhase is the runner's killPhase, for the shim.
func (sh *shim) killPhase(g *group, res string, wait time.Duration) string {
	spec := sh.spec
	mode := spec.KillMode
	if mode == "" {
		mode = "control-group"
	}
	if mode == "none" {
		return res
	}
	groupGone := func() bool { return !sh.mainAlive() && len(g.members()) == 0 }
	gone := groupGone
	if mode != "control-group" {
		gone = func() bool { return !sh.mainAlive() }
	}
	send := func(sig syscall.Signal) {
		if mode == "control-group" || (mode == "mixed" && sig == syscall.SIGKILL) {
			if sh.mainAlive() {
				syscall.Kill(-sh.pid, sig) // its process group, even outside the cgroup
			}
			g.signal(sig)
			return
		}
		if sh.mainAlive() {
			syscall.Kill(sh.pid, sig)
		}
	}
	sig := syscall.Signal(spec.KillSignal)
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if !gone() {
		send(sig)
		if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
			send(syscall.SIGCONT)
		}
		if !waitUntil(gone, time.Now().Add(wait)) {
			if spec.NoSIGKILL {
				sh.log("%s: State 'stop-sigterm' timed out. Skipping SIGKILL.", spec.Unit)
				return resTimeout
			}
			sh.log("%s: State 'stop-sigterm' timed out. Killing.", spec.Unit)
			res = resTimeout
			send(syscall.SIGKILL)
			if !waitUntil(gone, time.Now().Add(min(wait, 30*time.Second))) {
				sh.log("%s: Processes still around after SIGKILL. Ignoring.", spec.Unit)
			}
		}
	}
	if mode == "mixed" && !groupGone() {
		g.signal(syscall.SIGKILL)
		waitUntil(groupGone, time.Now().Add(30*time.Second))
	}
	return res
}

// runControl runs one ExecStop=/ExecStopPost= line with the unit's
// environment plus extra, until it exits (ok: status 0) or the deadline
// passes (timedOut; the process is left to the kill phase).
func (sh *shim) runControl(g *group, c shimCmd, extra []string, deadline time.Time) (ok, timedOut bool) {
	env := newEnviron()
	for _, a := range sh.spec.Env {
		env.setAssign(a)
	}
	for _, a := range extra {
		env.setAssign(a)
	}
	path, argv, err := commandWords(c.Line, c.prefix(), env)
	if err != nil {
		sh.log("%s: Failed to execute %s: %v", sh.spec.Unit, c.Line, err)
		return false, false
	}
	pid, done, err := sh.spawn(g, path, argv, env.list())
	if err != nil {
		sh.log("%s: Failed to execute %s: %v", sh.spec.Unit, c.Line, err)
		return false, false
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var ws syscall.WaitStatus
	select {
	case ws = <-done:
	case <-t.C:
		return false, true
	}
	code, status := exitInfo(ws)
	ok = code == "exited" && status == 0
	if !ok && !c.IgnoreFailure {
		sh.log("%s: Control process exited, code=%s, status=%s (pid %d)", sh.spec.Unit, code, runner.ExitStatusText(code, status), pid)
	}
	return ok, false
}

// spawn starts a control process as the main process was started (user,
// directory, cgroup, output to the journal). done receives its wait status
// from the reaper.
func (sh *shim) spawn(g *group, path string, argv, env []string) (int, <-chan syscall.WaitStatus, error) {
	spec := sh.spec
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, nil, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.UID != nil {
		sys.Credential = &syscall.Credential{Uid: *spec.UID, Gid: spec.GID, Groups: spec.Groups}
	}
	var cg *cgroup
	if len(g.cgs) > 0 {
		cg = g.cgs[0]
	}
	attr := &os.ProcAttr{Dir: spec.Dir, Env: env, Files: []*os.File{devnull, outW, errW}, Sys: sys}
	done := make(chan syscall.WaitStatus, 1)
	srv := sh.srv
	srv.mu.Lock()
	p, confirm, err := spawnInto(cg, spec.Rlimits, path, argv, attr)
	if err == nil {
		srv.waiters[p.Pid] = done
	}
	srv.mu.Unlock()
	if err == nil {
		srv.wakeReaper()
		if cerr := confirm(); cerr != nil {
			p.Release()
			err = cerr // the reaper reaps it
		}
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, nil, err
	}
	pid := p.Pid
	p.Release()
	g.added(pid)
	ident := filepath.Base(path)
	sh.copies.Add(2)
	go sh.copyOut(outR, pid, ident, journal.StreamStdout)
	go sh.copyOut(errR, pid, ident, journal.StreamStderr)
	return pid, done, nil
}
