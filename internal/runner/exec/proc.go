package exec

import (
	"bufio"
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

// cgroupRoot is this runner's directory in the cgroup v2 hierarchy.
type cgroupRoot struct {
	base string
	seq  int
	mu   sync.Mutex
}

type cgroup struct {
	path   string
	killed bool // cgroup.kill was used: spawning into it would be SIGKILLed
}

// cgroup2Mount finds where cgroup2 is mounted.
func cgroup2Mount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) >= 5 {
			return pre[4]
		}
	}
	return ""
}

// newCgroupRoot creates a fresh directory for this runner under our own
// cgroup v2 cgroup, or fails.
func newCgroupRoot() (*cgroupRoot, error) {
	mnt := cgroup2Mount()
	if mnt == "" {
		return nil, errors.New("no cgroup2 mount")
	}
	self := "/"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "0::") {
				self = strings.TrimSpace(l[3:])
			}
		}
	}
	removeDeadRoots(filepath.Join(mnt, self))
	var rnd [4]byte
	rand.Read(rnd[:])
	base := filepath.Join(mnt, self, fmt.Sprintf("fleet-exec-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])))
	if err := os.Mkdir(base, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		os.Remove(base)
		return nil, err
	}
	return &cgroupRoot{base: base}, nil
}

// removeDeadRoots removes the empty cgroups left by runners whose process
// is gone (it exited without Close). Populated cgroups cannot be removed,
// so nothing that still runs is touched.
func removeDeadRoots(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "fleet-exec-*"))
	for _, d := range dirs {
		f := strings.SplitN(strings.TrimPrefix(filepath.Base(d), "fleet-exec-"), "-", 2)
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue
		}
		(&cgroupRoot{base: d}).remove()
	}
}

func (c *cgroupRoot) create(unit string) (*cgroup, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	p := filepath.Join(c.base, fmt.Sprintf("%s.%d", unit, n))
	if err := os.Mkdir(p, 0o755); err != nil {
		return nil, err
	}
	return &cgroup{path: p}, nil
}

// remove deletes the runner's directory if it is empty (units left
// running keep it).
func (c *cgroupRoot) remove() {
	ents, _ := os.ReadDir(c.base)
	for _, e := range ents {
		if e.IsDir() {
			os.Remove(filepath.Join(c.base, e.Name()))
		}
	}
	os.Remove(c.base)
}

// pids lists the live (non-zombie) processes in the cgroup.
func (cg *cgroup) pids() []int {
	b, err := os.ReadFile(filepath.Join(cg.path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// kill SIGKILLs everything in the cgroup at once.
func (cg *cgroup) kill() error {
	cg.killed = true
	return os.WriteFile(filepath.Join(cg.path, "cgroup.kill"), []byte("1"), 0)
}

func (cg *cgroup) remove() error { return os.Remove(cg.path) }

// openFD opens the cgroup directory for CLONE_INTO_CGROUP.
func (cg *cgroup) openFD() (int, error) {
	return unix.Open(cg.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// moveInto writes pid into cgroup.procs.
func (cg *cgroup) moveInto(pid int) error {
	return os.WriteFile(filepath.Join(cg.path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}
