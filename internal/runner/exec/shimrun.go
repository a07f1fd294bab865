package exec

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// usesShims reports whether main processes run under shims.
func (r *Runner) usesShims() bool { return r.opts.StateDir != "" && len(r.opts.Shim) > 0 }

func (r *Runner) unitStateDir(unit string) string { return filepath.Join(r.opts.StateDir, unit) }

// startShimProcess is startProcess for a main process that must survive
// fleetd: it starts a shim (see shim.go) that starts the process.
func (u *unit) startShimProcess(rc *runCtx, path string, argv []string, env []string, onExit func(*proc)) (*proc, error) {
	r := u.r
	var rnd [4]byte
	rand.Read(rnd[:])
	dir := filepath.Join(r.unitStateDir(u.name), fmt.Sprintf("shim-%d-%s", rc.gen, hex.EncodeToString(rnd[:])))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &spawnError{226, fmt.Errorf("shim state directory: %w", err)}
	}
	spec := shimSpec{
		Unit: u.name, Ident: filepath.Base(path), Path: path, Argv: argv, Env: env, Dir: rc.dir,
		Heartbeat: r.opts.Heartbeat, HeartbeatTTL: r.opts.HeartbeatTTL,
		KillSignal: int(rc.cfg.killSignal), TimeoutStop: rc.cfg.timeoutStop,
		KillMode: rc.cfg.killMode, NoSIGKILL: !rc.cfg.sendSIGKILL,
		Hostname: r.opts.Hostname, Description: u.desc(),
		Stop:     shimCmds(rc, kindStop),
		StopPost: shimCmds(rc, kindStopPost),
	}
	if spec.KillMode == "control-group" {
		spec.KillMode = ""
	}
	if j := r.opts.Journal; j != nil {
		o := j.Options()
		spec.JournalDir, spec.JournalMaxBytes, spec.JournalMaxFiles, spec.Hostname = j.Dir(), o.MaxFileBytes, o.MaxFiles, o.Hostname
	}
	if c := rc.cred; c != nil {
		uid := c.Uid
		spec.UID, spec.GID, spec.Groups = &uid, c.Gid, c.Groups
	}
	if cg := rc.g.spawnCgroup(); cg != nil {
		spec.Cgroup, spec.CgroupV1 = cg.V2, cg.V1
	}
	spec.Rlimits = rc.cfg.rlimits
	fail := func(err error) (*proc, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	line, shimPID, err := r.shims.start(dir, spec, 60*time.Second)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return fail(err)
		}
		return fail(&spawnError{203, err})
	}
	pid, err := parseShimReport(line)
	if err != nil {
		return fail(rc.spawnFailed(err))
	}
	pr := &proc{pid: pid, ident: spec.Ident, done: make(chan struct{})}
	rc.g.added(pid)
	rc.shimDir = dir
	go r.watchShim(dir, pid, 0, shimPID, pr, onExit)
	return pr, nil
}

// shimCmds gives the shim a unit's ExecStop= or ExecStopPost= lines, with
// the specifiers of this start expanded.
func shimCmds(rc *runCtx, kind string) []shimCmd {
	var out []shimCmd
	for _, l := range rc.cfg.exec[kind] {
		out = append(out, shimCmd{Line: rc.sp.expand(l.line), IgnoreFailure: l.ignoreFailure, Argv0: l.argv0, NoEnv: l.noEnv})
	}
	return out
}

// watchShim waits for the main process of a shim to exit, takes its wait
// status from exit.json and completes pr. It gives up when the runner
// closes (pr stays open: the process is left to a later runner).
func (r *Runner) watchShim(dir string, pid int, start uint64, shimPID int, pr *proc, onExit func(*proc)) {
	exitPath := filepath.Join(dir, shimExitFile)
	if shimPID == 0 {
		var m shimMain
		_ = readJSON(filepath.Join(dir, shimMainFile), &m)
		shimPID = m.Shim
	}
	var shimStart uint64
	shimAlive := false
	if shimPID > 0 {
		if st, ok := readProcStat(shimPID); ok && st.state != 'Z' && st.state != 'X' {
			shimStart, shimAlive = st.start, true
		}
	}
	if !waitPIDExit(pid, start, r.quit) {
		return
	}
	var ex shimExit
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := readJSON(exitPath, &ex)
		if err == nil {
			pr.ws = syscall.WaitStatus(ex.WaitStatus)
			break
		}
		if time.Now().After(deadline) {
			// The shim died before recording the status.
			pr.ws = syscall.WaitStatus(syscall.SIGKILL)
			break
		}
		select {
		case <-r.quit:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := os.Stat(filepath.Join(dir, shimStoppingFile)); err == nil {
		// The shim stops the unit itself (fleetd's heartbeat went stale):
		// let it finish (ExecStopPost=) before the unit counts as down. It
		// writes stopped.json then; a shim of one unit (an older fleetd's)
		// exits instead.
		pr.byShim = true
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for shimAlive && samePID(shimPID, shimStart) {
			if _, err := os.Stat(filepath.Join(dir, shimStoppedFile)); err == nil {
				break
			}
			select {
			case <-r.quit:
				return
			case <-t.C:
			}
		}
	}
	if onExit != nil {
		onExit(pr)
	}
	close(pr.done)
	r.kick()
}

// samePID reports whether pid is still the process that started at start
// ticks (0: unknown) and has not exited.
func samePID(pid int, start uint64) bool {
	st, ok := readProcStat(pid)
	if !ok || st.state == 'Z' || st.state == 'X' {
		return false
	}
	return start == 0 || st.start == start
}

// waitPIDExit waits until pid (not necessarily our child) has exited. It
// returns false if quit closed first.
func waitPIDExit(pid int, start uint64, quit <-chan struct{}) bool {
	if f := openPidfd(pid); f != nil {
		if !samePID(pid, start) {
			f.Close()
			return true
		}
		if exited, ok := waitPidfd(f, quit); ok {
			return exited
		}
	}
	// No pidfd (old kernel, or not pollable): poll /proc.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if !samePID(pid, start) {
			return true
		}
		select {
		case <-quit:
			return false
		case <-t.C:
		}
	}
}

// waitPidfd waits on a pidfd (see openPidfd) until its process exits,
// through the runtime's poller (no thread is blocked), and closes it. A
// nil quit waits for good. ok is false if the descriptor cannot be polled.
func waitPidfd(f *os.File, quit <-chan struct{}) (exited, ok bool) {
	defer f.Close()
	return pollPidfd(f, quit)
}

// pollPidfd is waitPidfd without closing f.
func pollPidfd(f *os.File, quit <-chan struct{}) (exited, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false
	}
	quitted := make(chan struct{})
	if quit != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-quit:
				close(quitted)
				f.SetReadDeadline(time.Now())
			case <-stop:
			}
		}()
	}
	rerr := rc.Read(func(fd uintptr) bool {
		n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		if n > 0 {
			exited = true
		}
		return exited
	})
	if exited {
		return true, true
	}
	select {
	case <-quitted:
		return false, true
	default:
	}
	_ = rerr
	return false, false
}
