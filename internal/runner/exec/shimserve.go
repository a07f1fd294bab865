package exec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/fleetd/fleet/internal/journal"
)

// A shim process supervises one unit (`fleet-shim DIR`) or many
// (`fleet-shim --serve`). A Go program's start costs several milliseconds
// of CPU and about a megabyte of private memory, so the runner hands a
// shim process up to Options.ShimUnits units (64 by default) instead of
// starting one per unit: a start then costs a fork and exec of the main
// process only.
//
// Protocol of --serve: the runner writes one line per unit on the shim's
// stdin, a JSON shimRequest (the unit's directory and its spec, which
// `fleet-shim DIR` reads from DIR/spec.json instead); the shim starts the
// unit and answers on its stdout "ID ok PID" or "ID err ERRNO MESSAGE". On EOF of stdin (the runner is done with this shim, or fleetd
// is gone) it takes no more units and exits once the last of its units
// has ended. Each unit keeps its own directory (main.json, exit.json,
// stopping.json, stopped.json), so a later runner adopts units one by one
// whatever process supervises them.

// shimRequest is one line of a --serve shim's stdin.
type shimRequest struct {
	ID   uint64   `json:"id"`
	Dir  string   `json:"dir"`
	Spec shimSpec `json:"spec"`
}

// shimServeArg is the argument of the many-units mode.
const shimServeArg = "--serve"

// shimStoppedFile marks the end of a stop the shim did itself (heartbeat):
// ExecStopPost= has run. A shim supervising one unit exits then too.
const shimStoppedFile = "stopped.json"

// shimServer is a shim process's state: the units it supervises and the
// one reaper of all their processes (it is their child subreaper).
type shimServer struct {
	mu       sync.Mutex // held across spawns, so the reaper finds the waiter of a fresh child
	waiters  map[int]chan syscall.WaitStatus
	mains    map[int]*shim // main PID -> unit
	live     map[*shim]bool
	journals map[string]*journal.Journal
	spawned  chan struct{} // cap 1: a child was started (wakes an idle reaper)
	hbOnce   sync.Once
	units    sync.WaitGroup // one per unit until its end (copies included)
	setup    sync.Once
}

func newShimServer() *shimServer {
	return &shimServer{
		waiters:  map[int]chan syscall.WaitStatus{},
		mains:    map[int]*shim{},
		live:     map[*shim]bool{},
		journals: map[string]*journal.Journal{},
		spawned:  make(chan struct{}, 1),
	}
}

// processSetup is done once per shim process, before its first unit.
func (srv *shimServer) processSetup() {
	srv.setup.Do(func() {
		// Our own signals: the shim must survive whatever fleetd goes
		// through. Caught, not ignored: an ignored signal would stay
		// ignored in the unit's processes.
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
		go func() {
			for range sigs {
			}
		}()
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		go srv.reap()
	})
}

// serve reads "ID DIR" lines from in until EOF, starts each unit in a
// goroutine of its own (requests do not wait for one another: the forks
// are serialized by the runtime, the rest overlaps) and answers on out,
// then waits for the units to end.
func (srv *shimServer) serve(ctx context.Context, in io.Reader, out io.Writer) int {
	srv.processSetup()
	var outMu sync.Mutex
	var pending sync.WaitGroup
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			pending.Add(1)
			go func() {
				defer pending.Done()
				write := func(reply string) {
					// A failed write (fleetd is gone) changes nothing: a
					// unit that started is in its directory, for a later
					// runner to adopt.
					outMu.Lock()
					_, _ = io.WriteString(out, reply+"\n")
					outMu.Unlock()
				}
				var req shimRequest
				if err := json.Unmarshal([]byte(line), &req); err != nil || req.Dir == "" {
					write(fmt.Sprintf("%d err %d bad request %q", req.ID, int(syscall.EINVAL), line))
					return
				}
				srv.startUnit(ctx, req.Dir, &req.Spec, func(pid int, errno syscall.Errno, err error) {
					if err != nil {
						write(fmt.Sprintf("%d err %d %s", req.ID, int(errno), oneLine(err.Error())))
					} else {
						write(fmt.Sprintf("%d ok %d", req.ID, pid))
					}
				})
			}()
		}
		if err != nil {
			break
		}
	}
	pending.Wait()
	srv.units.Wait()
	srv.close()
	return 0
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func (srv *shimServer) close() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, j := range srv.journals {
		j.Close()
	}
	srv.journals = map[string]*journal.Journal{}
}

// journal returns the shim's journal for a spec (opened once per
// directory).
func (srv *shimServer) journal(spec shimSpec) (*journal.Journal, error) {
	if spec.JournalDir == "" {
		return nil, nil
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if j := srv.journals[spec.JournalDir]; j != nil {
		return j, nil
	}
	j, err := journal.Open(spec.JournalDir, journal.Options{
		MaxFileBytes: spec.JournalMaxBytes, MaxFiles: spec.JournalMaxFiles, Hostname: spec.Hostname,
	})
	if err != nil {
		return nil, err
	}
	srv.journals[spec.JournalDir] = j
	return j, nil
}

// startUnit starts the unit of spec (nil: read from dir's spec.json),
// whose files go in dir, and supervises it until it ends. It calls report once, with the main process's PID as soon
// as it runs (main.json is written right after, off the caller's path),
// or with why it did not start (the errno for the runner's exit status).
func (srv *shimServer) startUnit(ctx context.Context, dir string, spec *shimSpec, report func(pid int, errno syscall.Errno, err error)) {
	if _, errno, err := srv.spawnUnit(ctx, dir, spec, report); err != nil {
		report(0, errno, err)
	}
}

// spawnUnit is startUnit; it calls report itself only on success.
func (srv *shimServer) spawnUnit(ctx context.Context, dir string, specp *shimSpec, report func(pid int, errno syscall.Errno, err error)) (int, syscall.Errno, error) {
	srv.processSetup()
	if specp == nil {
		specp = new(shimSpec)
		if err := readJSON(filepath.Join(dir, shimSpecFile), specp); err != nil {
			return 0, syscall.EINVAL, fmt.Errorf("read spec: %w", err)
		}
	}
	spec := *specp
	jr, err := srv.journal(spec)
	if err != nil {
		return 0, syscall.EIO, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, syscall.EIO, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, syscall.EMFILE, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, syscall.EMFILE, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.UID != nil {
		sys.Credential = &syscall.Credential{Uid: *spec.UID, Gid: spec.GID, Groups: spec.Groups}
	}
	var cg *cgroup
	if spec.Cgroup != "" || len(spec.CgroupV1) > 0 {
		cg = &cgroup{Group: cgrp.Group{V2: spec.Cgroup, V1: spec.CgroupV1}}
	}
	sh := &shim{
		srv: srv, spec: spec, dir: dir, jr: jr, cg: cg,
		mainDone: make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	attr := &os.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: []*os.File{devnull, outW, errW}, Sys: sys}
	srv.mu.Lock()
	p, confirm, err := spawnInto(cg, spec.Rlimits, spec.Path, spec.Argv, attr)
	if err == nil {
		sh.pid = p.Pid
		srv.mains[p.Pid] = sh
	}
	srv.mu.Unlock()
	outW.Close()
	errW.Close()
	if err == nil {
		srv.wakeReaper()
		if cerr := confirm(); cerr != nil {
			// The setup failed: the process exits on its own; the reaper
			// reaps it, nobody waits.
			srv.mu.Lock()
			if srv.mains[p.Pid] == sh {
				delete(srv.mains, p.Pid)
			}
			srv.mu.Unlock()
			p.Release()
			err = cerr
		}
	}
	if err != nil {
		outR.Close()
		errR.Close()
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = syscall.ENOEXEC
		}
		return 0, errno, err
	}
	p.Release()
	pid := sh.pid
	srv.units.Add(1)
	report(pid, 0, nil)
	// The runner does not wait for main.json: it records the unit for
	// adoption (unit.json) only after this answer, and a later runner
	// reads both.
	m := shimMain{PID: pid, Shim: os.Getpid()}
	if st, ok := readProcStat(pid); ok {
		m.Start = st.start
	}
	if err := writeJSONAtomic(filepath.Join(dir, shimMainFile), m); err != nil {
		sh.log("%s: cannot record the main process (%v): a restarted fleetd will not adopt it", spec.Unit, err)
	}
	srv.mu.Lock()
	srv.live[sh] = true
	srv.mu.Unlock()
	sh.copies.Add(2)
	go sh.copyOut(outR, pid, spec.Ident, journal.StreamStdout)
	go sh.copyOut(errR, pid, spec.Ident, journal.StreamStderr)
	if spec.Heartbeat != "" && spec.HeartbeatTTL > 0 {
		srv.hbOnce.Do(func() { go srv.watchHeartbeat(ctx, spec.Heartbeat, spec.HeartbeatTTL) })
	}
	go func() {
		defer srv.units.Done()
		<-sh.mainDone
		// A stop the shim began (heartbeat) runs to its end:
		// ExecStopPost= and the killing of what is left come after the
		// main process.
		srv.mu.Lock()
		stopping := sh.stopping
		srv.mu.Unlock()
		if stopping {
			<-sh.stopped
		}
		sh.copies.Wait()
		srv.mu.Lock()
		delete(srv.live, sh)
		srv.mu.Unlock()
	}()
	return pid, 0, nil
}

// wakeReaper tells an idle reaper that there is a child to wait for.
func (srv *shimServer) wakeReaper() {
	select {
	case srv.spawned <- struct{}{}:
	default:
	}
}

// reap reaps everything: the main processes, the shim's control
// processes and orphans of the units (the shim is their subreaper).
func (srv *shimServer) reap() {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			<-srv.spawned // no child now: wait for the next one
			continue
		}
		if err != nil {
			return
		}
		srv.mu.Lock()
		sh := srv.mains[got]
		delete(srv.mains, got)
		ch, ok := srv.waiters[got]
		delete(srv.waiters, got)
		srv.mu.Unlock()
		if sh != nil {
			sh.mainWS = ws
			_ = writeJSONAtomic(filepath.Join(sh.dir, shimExitFile), shimExit{WaitStatus: uint32(ws), Time: time.Now()})
			close(sh.mainDone)
		}
		if ok {
			ch <- ws
		}
	}
}

// watchHeartbeat stops the units whose main process is up when fleetd
// stopped renewing the machine's lease for longer than its TTL. It runs
// for the life of the shim process (units started later, when fleetd is
// back, are stopped only if the heartbeat goes stale again).
func (srv *shimServer) watchHeartbeat(ctx context.Context, path string, ttl time.Duration) {
	hb := &heartbeat{path: path, lastBeat: time.Now()}
	if st, err := os.Stat(path); err == nil {
		hb.lastBeat = st.ModTime()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		age := hb.age(time.Now())
		if age <= ttl {
			continue
		}
		var stop []*shim
		srv.mu.Lock()
		for sh := range srv.live {
			if sh.stopping || !sh.mainAlive() {
				continue // exited on its own, or being stopped
			}
			sh.stopping = true
			stop = append(stop, sh)
		}
		srv.mu.Unlock()
		missing := ""
		if _, err := os.Stat(path); err != nil {
			missing = " (the heartbeat file is missing)"
		}
		for _, sh := range stop {
			go func() {
				defer close(sh.stopped)
				sh.log("%s: fleetd has not renewed the machine's lease for %v (agent_ttl %v)%s; stopping the unit, it is being rescheduled.",
					sh.spec.Unit, age.Round(time.Millisecond), ttl, missing)
				_ = writeJSONAtomic(filepath.Join(sh.dir, shimStoppingFile), shimExit{Time: time.Now()})
				sh.stopUnit()
				_ = writeJSONAtomic(filepath.Join(sh.dir, shimStoppedFile), shimExit{Time: time.Now()})
			}()
		}
	}
}

// shimReply parses a --serve answer line: its ID and the rest (an
// "ok PID" or "err ERRNO MESSAGE" report).
func shimReply(line string) (uint64, string, error) {
	id, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
	n, err := strconv.ParseUint(id, 10, 64)
	if !ok || err != nil {
		return 0, "", fmt.Errorf("shim: bad reply %q", line)
	}
	return n, rest, nil
}
