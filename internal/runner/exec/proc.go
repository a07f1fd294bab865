package exec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
)

// procStat is the part of /proc/<pid>/stat we use.
type procStat struct {
	pid, ppid, pgid, sid int
	state                byte
	start                uint64 // start time in clock ticks since boot
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// comm may contain spaces and ')': fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{pid: pid, state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgid, _ = strconv.Atoi(f[2])
	st.sid, _ = strconv.Atoi(f[3])
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

func allProcs() []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok {
			out = append(out, st)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, ok := readProcStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// procCmdline returns the command line of pid, or [comm] when empty.
func procCmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err == nil && len(b) > 0 {
		return strings.TrimSpace(strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
	}
	c, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return "[" + strings.TrimSpace(string(c)) + "]"
}

// childPIDs lists the direct children of this process (all threads).
func childPIDs(self int) []int {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(tasks) == 0 {
		var out []int
		for _, p := range allProcs() {
			if p.ppid == self {
				out = append(out, p.pid)
			}
		}
		return out
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// reaper reaps orphans re-parented to us (we are a child subreaper), and
// keeps their exit statuses for whoever supervises them (a forking
// service's main PID). It never touches children the runner started
// itself (they are "managed" and reaped by rp.wait), nor
// children in our own process group (other code in this process that
// starts commands without Setpgid).
type reaper struct {
	self, selfPgid int
	kick           func()

	mu      sync.Mutex // held across spawns so a fresh child is never reaped by mistake
	managed map[int]struct{}
	exits   map[int]syscall.WaitStatus
	order   []int

	sigs chan os.Signal
	stop chan struct{}
	done chan struct{}
}

func newReaper(kick func()) *reaper {
	rp := &reaper{
		self:     os.Getpid(),
		selfPgid: syscall.Getpgrp(),
		kick:     kick,
		managed:  map[int]struct{}{},
		exits:    map[int]syscall.WaitStatus{},
		sigs:     make(chan os.Signal, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	signal.Notify(rp.sigs, syscall.SIGCHLD)
	go rp.run()
	return rp
}

func (rp *reaper) run() {
	defer close(rp.done)
	for {
		select {
		case <-rp.stop:
			signal.Stop(rp.sigs)
			return
		case <-rp.sigs:
			rp.reap()
			rp.kick()
		}
	}
}

func (rp *reaper) close() {
	close(rp.stop)
	<-rp.done
}

func (rp *reaper) reap() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, pid := range childPIDs(rp.self) {
		if _, ok := rp.managed[pid]; ok {
			continue
		}
		st, ok := readProcStat(pid)
		if !ok || st.state != 'Z' || st.ppid != rp.self || st.pgid == rp.selfPgid {
			continue
		}
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil || got != pid {
			continue
		}
		rp.exits[pid] = ws
		rp.order = append(rp.order, pid)
		if len(rp.order) > 1024 {
			delete(rp.exits, rp.order[0])
			rp.order = rp.order[1:]
		}
	}
}

// child is a process the runner started (listed in rp.managed) that a
// goroutine waits for with rp.wait.
type child struct {
	pid   int
	pidfd *os.File // pollable pidfd; nil: none (old kernel)
}

// watch takes over p, just started and listed in rp.managed: it opens a
// pidfd for it and releases p (the caller must not use p again, not even
// p.Pid). The pid cannot be recycled before rp.wait reaps it, since
// nothing else reaps a managed child.
func (rp *reaper) watch(p *os.Process) *child {
	c := &child{pid: p.Pid, pidfd: openPidfd(p.Pid)}
	// Closes the os package's own pidfd; does not reap.
	p.Release()
	return c
}

// wait waits until c exits, reaps it and unlists it from rp.managed. It
// blocks no OS thread: the exit is seen through the pidfd in the runtime's
// poller, then the status is collected by a non-blocking wait4 with rp.mu
// held, so the SIGCHLD reaper (which skips managed children) can never
// take it, and the process is reaped exactly once. Without a pollable
// pidfd it falls back to a blocking wait4 (one thread per child, as
// os.Process.Wait). ok is false if the status is unknown.
func (rp *reaper) wait(c *child) (ws syscall.WaitStatus, ok bool) {
	if c.pidfd != nil {
		exited, pollable := pollPidfd(c.pidfd, nil)
		if exited && pollable {
			ws, ok = rp.reapExited(c.pid, c.pidfd)
			c.pidfd.Close()
			return ws, ok
		}
		c.pidfd.Close()
	}
	var err error
	for {
		_, err = syscall.Wait4(c.pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	rp.mu.Lock()
	delete(rp.managed, c.pid)
	rp.mu.Unlock()
	if err == nil {
		return ws, true
	}
	return rp.exitOf(c.pid)
}

// reapExited reaps pid, a managed child whose pidfd reported its exit.
func (rp *reaper) reapExited(pid int, pidfd *os.File) (syscall.WaitStatus, bool) {
	delay := time.Millisecond
	for {
		var ws syscall.WaitStatus
		rp.mu.Lock()
		// The pidfd's process still waits to be reaped (or is running):
		// pid is still its, not recycled, even if something outside
		// rp.mu reaped it (another runner's reaper in this process).
		// WNOWAIT: this only checks. EINVAL: no P_PIDFD (Linux < 5.4).
		var err error
		if pidfdReaped(pidfd) {
			err = syscall.ECHILD
		}
		got := 0
		if err == nil {
			got, err = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
		if err == syscall.EINTR {
			rp.mu.Unlock()
			continue
		}
		if got == pid || err != nil {
			delete(rp.managed, pid)
			rp.mu.Unlock()
			if err == nil {
				return ws, true
			}
			// ECHILD: reaped by someone else (must not happen).
			return rp.exitOf(pid)
		}
		rp.mu.Unlock()
		// Not waitable yet (the pidfd can report the exit a moment
		// before wait4 sees it): try again shortly.
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// pidfdReaped reports whether the process of a pidfd is known to be
// reaped already: waitid(P_PIDFD, WNOWAIT) checks without reaping.
// Kernels without P_PIDFD (Linux < 5.4) say EINVAL: not known.
func pidfdReaped(pidfd *os.File) bool {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return false
	}
	var werr error
	rc.Control(func(fd uintptr) {
		for {
			werr = unix.Waitid(unix.P_PIDFD, int(fd), nil, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			if werr != unix.EINTR {
				return
			}
		}
	})
	return werr == unix.ECHILD
}

// openPidfd returns a non-blocking pidfd for pid, for waitPidfd, or nil if
// pidfds are unavailable.
func openPidfd(pid int) *os.File {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil
	}
	// Non-blocking: os.NewFile registers it with the runtime's poller.
	return os.NewFile(uintptr(fd), "pidfd")
}

// exitOf returns the status of a reaped orphan.
func (rp *reaper) exitOf(pid int) (syscall.WaitStatus, bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	ws, ok := rp.exits[pid]
	return ws, ok
}

// cgroupRoot is this runner's directory in each cgroup hierarchy it uses
// (see internal/cgroup).
type cgroupRoot struct {
	*cgrp.Root
	seq int
	mu  sync.Mutex
}

// cgroup is one unit cgroup (a v2 cgroup or v1 cgroups) of one start.
type cgroup struct {
	cgrp.Group
	killed bool // cgroup.kill was used: spawning into it would be SIGKILLed
}

// cgroupPrefix starts the name of every runner's root directory.
const cgroupPrefix = "fleet-exec-"

// newCgroupRoot creates a fresh directory for this runner under our own
// cgroup in the v2 hierarchy and the writable v1 ones (version 1 or 2
// restricts it to one), or fails when none is usable.
func newCgroupRoot(version int) (*cgroupRoot, error) {
	sys := cgrp.Detect()
	sys.RemoveDead(cgroupPrefix)
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s%d-%s", cgroupPrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	root, err := sys.NewRoot(name, version == 1, version == 2)
	if err != nil {
		return nil, err
	}
	return &cgroupRoot{Root: root}, nil
}

func (c *cgroupRoot) create(unit string, plan cgrp.Plan) (*cgroup, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	g, err := c.Root.Create(fmt.Sprintf("%s.%d", unit, n), plan)
	if err != nil {
		return nil, err
	}
	return &cgroup{Group: *g}, nil
}

// remove deletes the runner's directories if they are empty (units left
// running keep them).
func (c *cgroupRoot) remove() { c.Root.Remove() }

// pids lists the live (non-zombie) processes in the cgroup.
func (cg *cgroup) pids() []int {
	var out []int
	for _, pid := range cg.Procs() {
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func (cg *cgroup) remove() error { return cg.Group.Remove() }

// openFD opens the v2 cgroup directory for CLONE_INTO_CGROUP.
func (cg *cgroup) openFD() (int, error) {
	if cg.V2 == "" {
		return -1, errors.New("no cgroup v2")
	}
	return unix.Open(cg.V2, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// needsJoin reports whether a process must join the cgroup itself before
// it execs (v1: there is no CLONE_INTO_CGROUP).
func (cg *cgroup) needsJoin() bool { return cg != nil && len(cg.V1) > 0 }
