package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
)

// Setup re-exec. Go's os.StartProcess cannot run code between fork and
// exec, and cgroup v1 has no CLONE_INTO_CGROUP, so a process that must
// join v1 cgroups or get Limit*= rlimits before its program runs is
// started as this very binary (/proc/self/exe) with FLEET_EXEC_SETUP=1:
// the init function below reads a setupSpec from fd 3, sets the rlimits,
// joins the cgroups, drops credentials, changes directory and execs the
// real program with the unit's environment. Failures are reported on fd
// 4 (close-on-exec, so EOF means the exec succeeded) as
// "STAGE ERRNO MESSAGE". Every binary linking this package (fleetd,
// fleet-shim, the tests) can do it.

const setupEnvVar = "FLEET_EXEC_SETUP"

// setupSpec is what the setup re-exec does.
type setupSpec struct {
	Path    string        `json:"path"`
	Argv    []string      `json:"argv"`
	Env     []string      `json:"env"`
	Dir     string        `json:"dir"`
	Join    []string      `json:"join,omitempty"` // cgroup.procs files
	Rlimits []rlimitValue `json:"rlimits,omitempty"`
	UID     *uint32       `json:"uid,omitempty"`
	GID     uint32        `json:"gid,omitempty"`
	Groups  []uint32      `json:"groups,omitempty"`
}

// Stages of the setup, for its errors (and systemd's exit statuses).
const (
	stageLimits = "limits" // 205/LIMITS
	stageCgroup = "cgroup" // 219/CGROUP
	stageUser   = "user"   // 216/GROUP, 217/USER
	stageChdir  = "chdir"  // 200/CHDIR
	stageExec   = "exec"   // 203/EXEC
)

func init() {
	if os.Getenv(setupEnvVar) == "1" {
		os.Exit(setupMain())
	}
}

func setupMain() int {
	runtime.LockOSThread() // credentials are set on this thread, which execs
	report := os.NewFile(4, "setup-report")
	fail := func(stage string, err error) int {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = syscall.EINVAL
		}
		fmt.Fprintf(report, "%s %d %v\n", stage, int(errno), err)
		return 127
	}
	unix.CloseOnExec(4)
	var spec setupSpec
	in := os.NewFile(3, "setup-spec")
	err := json.NewDecoder(in).Decode(&spec)
	in.Close()
	if err != nil {
		return fail(stageExec, err)
	}
	for _, rl := range spec.Rlimits {
		// syscall.Setrlimit: for RLIMIT_NOFILE it also stops Go from
		// restoring its own soft limit at exec.
		if err := setrlimitClosest(rl); err != nil {
			return fail(stageLimits, fmt.Errorf("%s=%s: %w", rl.Name, rl.text(), err))
		}
	}
	var fds []int
	for _, f := range spec.Join {
		fd, err := unix.Open(f, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(stageCgroup, fmt.Errorf("%s: %w", f, err))
		}
		fds = append(fds, fd)
	}
	// From here on, no new thread must be needed (TasksMax=): raw system
	// calls only, then exec.
	pid := []byte(strconv.Itoa(os.Getpid()))
	for i, fd := range fds {
		if _, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&pid[0])), uintptr(len(pid))); e != 0 {
			return fail(stageCgroup, fmt.Errorf("%s: %w", spec.Join[i], e))
		}
		unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	}
	if spec.UID != nil {
		var gp uintptr
		if len(spec.Groups) > 0 {
			gp = uintptr(unsafe.Pointer(&spec.Groups[0]))
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(spec.Groups)), gp, 0); e != 0 {
			return fail(stageUser, e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(spec.GID), 0, 0); e != 0 {
			return fail(stageUser, e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(*spec.UID), 0, 0); e != 0 {
			return fail(stageUser, e)
		}
	}
	if spec.Dir != "" {
		d, err := unix.BytePtrFromString(spec.Dir)
		if err != nil {
			return fail(stageChdir, err)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(d)), 0, 0); e != 0 {
			return fail(stageChdir, e)
		}
	}
	err = syscall.Exec(spec.Path, spec.Argv, spec.Env)
	return fail(stageExec, err)
}

// setrlimitClosest sets rl, or, when the kernel refuses (EPERM: above
// the current hard limit without the privilege, or RLIMIT_NOFILE above
// fs.nr_open), the closest it allows, as systemd's setrlimit_closest.
func setrlimitClosest(rl rlimitValue) error {
	want := syscall.Rlimit{Cur: rl.Cur, Max: rl.Max}
	err := syscall.Setrlimit(rl.Resource, &want)
	if err != syscall.EPERM {
		return err
	}
	if rl.Resource == unix.RLIMIT_NOFILE {
		if b, rerr := os.ReadFile("/proc/sys/fs/nr_open"); rerr == nil {
			if n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); perr == nil {
				try := syscall.Rlimit{Cur: min(want.Cur, n), Max: min(want.Max, n)}
				if syscall.Setrlimit(rl.Resource, &try) == nil {
					return nil
				}
			}
		}
	}
	var cur syscall.Rlimit
	if gerr := syscall.Getrlimit(rl.Resource, &cur); gerr != nil {
		return err
	}
	try := syscall.Rlimit{Cur: min(want.Cur, cur.Max), Max: min(want.Max, cur.Max)}
	return syscall.Setrlimit(rl.Resource, &try)
}

// setupError is a failure the setup re-exec reported.
type setupError struct {
	stage string
	errno syscall.Errno
	msg   string
}

func (e *setupError) Error() string { return e.msg }
func (e *setupError) Unwrap() error { return e.errno }

// status is systemd's exit status for the failed step (0: let the caller
// decide, as for a failed exec).
func (e *setupError) status() int {
	switch e.stage {
	case stageLimits:
		return 205
	case stageCgroup:
		return 219
	case stageUser:
		return 216
	}
	return 0
}

// setupStart starts path/argv as os.StartProcess would with attr, but
// through the setup re-exec, which first sets rlimits and joins the
// cgroup.procs files in join. The returned confirm waits until the
// program is exec'd (nil) or the setup failed (then the process exits
// 127 and must still be reaped by the caller). Call confirm after
// registering the process, outside locks that reaping needs.
func setupStart(path string, argv []string, attr *os.ProcAttr, join []string, rlimits []rlimitValue) (*os.Process, func() error, error) {
	spec := setupSpec{Path: path, Argv: argv, Env: attr.Env, Dir: attr.Dir, Join: join, Rlimits: rlimits}
	sys := *attr.Sys
	if c := sys.Credential; c != nil {
		uid := c.Uid
		spec.UID, spec.GID, spec.Groups = &uid, c.Gid, c.Groups
		sys.Credential = nil
	}
	if spec.Dir == "" {
		spec.Dir = "/"
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, nil, err
	}
	if len(attr.Files) != 3 {
		specR.Close()
		specW.Close()
		repR.Close()
		repW.Close()
		return nil, nil, errors.New("setup: stdin, stdout and stderr expected")
	}
	// fds 3 and 4 are the pipes.
	files := append(append([]*os.File(nil), attr.Files...), specR, repW)
	a := &os.ProcAttr{
		Dir:   "/",
		Env:   []string{setupEnvVar + "=1", "GOMAXPROCS=1"},
		Files: files,
		Sys:   &sys,
	}
	p, err := os.StartProcess("/proc/self/exe", []string{"fleet-exec-setup"}, a)
	specR.Close()
	repW.Close()
	if err != nil {
		specW.Close()
		repR.Close()
		return nil, nil, err
	}
	go func() {
		specW.Write(b)
		specW.Close()
	}()
	confirm := func() error {
		defer repR.Close()
		line, err := bufio.NewReader(repR).ReadString('\n')
		if err == io.EOF && line == "" {
			return nil // exec'd: the close-on-exec pipe closed
		}
		return parseSetupReport(strings.TrimSpace(line))
	}
	return p, confirm, nil
}

// errThreadJoin: startFromV1Thread could not start the process in the
// cgroups; the setup re-exec should try (and report what fails).
var errThreadJoin = errors.New("thread join failed")

// startFromV1Thread starts path/argv with attr inside the v1 cgroups v1
// (controller -> directory) without the setup re-exec, which is a second
// program start (several milliseconds). v1 cgroup membership is per
// thread (the tasks file) and a forked child starts in its forking
// thread's cgroups: a goroutine locks an OS thread, notes that thread's
// own cgroups, moves the thread into the unit's, forks the process there
// and moves the thread back before unlocking it. Should the move back
// fail, the thread stays locked, and the runtime destroys it when the
// goroutine ends, so no other goroutine ever runs in a unit's cgroups. It
// returns an error wrapping errThreadJoin, having started nothing, when
// the thread cannot join, and when the fork is refused with EAGAIN (the
// joined thread itself counts against the unit's TasksMax=): the caller
// then falls back to the re-exec.
func startFromV1Thread(v1 map[string]string, path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	ctrls := make([]string, 0, len(v1))
	for c := range v1 {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	var dirs []string
	for _, c := range ctrls {
		if d := v1[c]; !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := cgrp.ThreadHome(ctrls)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("%w: %w", errThreadJoin, err)}
			return
		}
		tid := []byte(strconv.Itoa(unix.Gettid()))
		moveTo := func(ds []string) error {
			for _, d := range ds {
				if err := os.WriteFile(d+"/tasks", tid, 0); err != nil {
					return fmt.Errorf("%s: %w", d, err)
				}
			}
			return nil
		}
		var p *os.Process
		if err = moveTo(dirs); err == nil {
			p, err = os.StartProcess(path, argv, attr)
			if errors.Is(err, syscall.EAGAIN) {
				err = fmt.Errorf("%w: %w", errThreadJoin, err)
			}
		} else {
			err = fmt.Errorf("%w: %w", errThreadJoin, err)
		}
		if moveTo(home) == nil {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

func parseSetupReport(line string) error {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 3 {
		return &setupError{stage: stageExec, errno: syscall.EIO, msg: "setup failed: " + line}
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return &setupError{stage: stageExec, errno: syscall.EIO, msg: "setup failed: " + line}
	}
	return &setupError{stage: f[0], errno: syscall.Errno(n), msg: f[2]}
}

// spawnInto starts path/argv with attr (which it may modify) in cg (nil:
// none): a v2 cgroup through CLONE_INTO_CGROUP (moved in after the fact
// where the kernel cannot), v1 cgroups and rlimits through the setup
// re-exec. confirm (never nil) must be called once the process is
// registered with whoever reaps it: it reports a failed setup, after
// which the process exits on its own.
func spawnInto(cg *cgroup, rl []rlimitValue, path string, argv []string, attr *os.ProcAttr) (*os.Process, func() error, error) {
	ok := func() error { return nil }
	cgfd := -1
	if cg != nil && cg.V2 != "" {
		if fd, err := cg.openFD(); err == nil {
			cgfd = fd
			defer syscall.Close(fd)
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
		}
	}
	start := func() (*os.Process, func() error, error) {
		if cg.needsJoin() || len(rl) > 0 {
			var join []string
			if cg.needsJoin() {
				for _, d := range cg.Dirs() {
					if d != cg.V2 {
						join = append(join, d+"/cgroup.procs")
					}
				}
			}
			if len(rl) == 0 {
				// Only v1 cgroups to join: fork from a thread that joined
				// them, without a second program start.
				if p, err := startFromV1Thread(cg.V1, path, argv, attr); !errors.Is(err, errThreadJoin) {
					return p, ok, err
				}
			}
			return setupStart(path, argv, attr, join, rl)
		}
		p, err := os.StartProcess(path, argv, attr)
		return p, ok, err
	}
	p, confirm, err := start()
	if err != nil && cgfd >= 0 && retryWithoutCgroup(err) {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = false, 0
		p, confirm, err = start()
		if err == nil {
			_ = os.WriteFile(cg.V2+"/cgroup.procs", []byte(strconv.Itoa(p.Pid)), 0)
		}
	}
	return p, confirm, err
}
