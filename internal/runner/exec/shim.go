package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetd/fleet/internal/journal"
)

// A shim is a small process (`fleet-shim DIR`, cmd/fleet-shim, a binary
// linking little else; or `fleetd shim DIR`, the same code in fleetd) that
// starts a unit's main process and outlives fleetd: it runs in its own
// session, holds the main process's stdout/stderr and writes them into the
// unit's journal itself, reaps it (it is a child subreaper for the unit's
// processes) and records its exit status. Runners, the one that started it
// or one started later on the same state directory, only read the files it
// leaves in DIR:
//
//	spec.json  what to run (written by the runner before starting the shim)
//	main.json  the main process: PID and start time (written once started)
//	exit.json  the main process's wait status (written when it exits)
//
// The runner also gives the shim a pipe on its stdout, on which the shim
// reports one line, "ok PID" or "err ERRNO MESSAGE", then closes it.
//
// Heartbeat: when the spec names a heartbeat file, fleetd touches it each
// time it renews the machine's lease. If the file is older than the TTL
// (fleetd is gone or cut off from etcd, so the machine's units are being
// moved elsewhere) the shim stops the unit's processes itself: KillSignal,
// then SIGKILL after TimeoutStopSec.

// shimSpec is spec.json.
type shimSpec struct {
	Unit   string   `json:"unit"`
	Ident  string   `json:"ident"`
	Path   string   `json:"path"`
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`
	Cgroup string   `json:"cgroup,omitempty"`
	// Credentials; nil runs as the shim's user.
	UID    *uint32  `json:"uid,omitempty"`
	GID    uint32   `json:"gid,omitempty"`
	Groups []uint32 `json:"groups,omitempty"`

	JournalDir      string `json:"journalDir,omitempty"`
	JournalMaxBytes int64  `json:"journalMaxBytes,omitempty"`
	JournalMaxFiles int    `json:"journalMaxFiles,omitempty"`
	Hostname        string `json:"hostname,omitempty"`

	Heartbeat    string        `json:"heartbeat,omitempty"`
	HeartbeatTTL time.Duration `json:"heartbeatTTL,omitempty"`
	KillSignal   int           `json:"killSignal,omitempty"`
	TimeoutStop  time.Duration `json:"timeoutStop,omitempty"`
}

// shimMain is main.json.
type shimMain struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc start time, against PID reuse
	Shim  int    `json:"shim"`
}

// shimExit is exit.json.
type shimExit struct {
	WaitStatus uint32    `json:"waitStatus"`
	Time       time.Time `json:"time"`
}

const (
	shimSpecFile = "spec.json"
	shimMainFile = "main.json"
	shimExitFile = "exit.json"
)

func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// ShimMain is the entry point of `fleet-shim DIR` and `fleetd shim DIR`.
// It returns the exit code.
func ShimMain(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: fleet-shim DIR, or fleetd shim DIR (started by fleetd's runner)")
		return 2
	}
	dir := args[0]
	report := os.NewFile(1, "report")
	fail := func(errno syscall.Errno, err error) int {
		fmt.Fprintf(report, "err %d %s\n", int(errno), err)
		return 1
	}
	var spec shimSpec
	if err := readJSON(filepath.Join(dir, shimSpecFile), &spec); err != nil {
		return fail(syscall.EINVAL, fmt.Errorf("read spec: %w", err))
	}
	// Our own signals: the shim must survive whatever fleetd goes through.
	// Caught, not ignored: an ignored signal would stay ignored in the
	// unit's processes.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	var jr *journal.Journal
	if spec.JournalDir != "" {
		var err error
		jr, err = journal.Open(spec.JournalDir, journal.Options{
			MaxFileBytes: spec.JournalMaxBytes, MaxFiles: spec.JournalMaxFiles, Hostname: spec.Hostname,
		})
		if err != nil {
			return fail(syscall.EIO, err)
		}
		defer jr.Close()
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(syscall.EIO, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(syscall.EMFILE, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(syscall.EMFILE, err)
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.UID != nil {
		sys.Credential = &syscall.Credential{Uid: *spec.UID, Gid: spec.GID, Groups: spec.Groups}
	}
	var cg *cgroup
	if spec.Cgroup != "" {
		cg = &cgroup{path: spec.Cgroup}
		if fd, err := cg.openFD(); err == nil {
			defer syscall.Close(fd)
			sys.UseCgroupFD, sys.CgroupFD = true, fd
		}
	}
	attr := &os.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: []*os.File{devnull, outW, errW}, Sys: sys}
	p, err := os.StartProcess(spec.Path, spec.Argv, attr)
	if err != nil && sys.UseCgroupFD && retryWithoutCgroup(err) {
		sys.UseCgroupFD, sys.CgroupFD = false, 0
		p, err = os.StartProcess(spec.Path, spec.Argv, attr)
		if err == nil {
			_ = cg.moveInto(p.Pid)
		}
	}
	devnull.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = syscall.ENOEXEC
		}
		return fail(errno, err)
	}
	pid := p.Pid
	m := shimMain{PID: pid, Shim: os.Getpid()}
	if st, ok := readProcStat(pid); ok {
		m.Start = st.start
	}
	if err := writeJSONAtomic(filepath.Join(dir, shimMainFile), m); err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		return fail(syscall.EIO, err)
	}
	fmt.Fprintf(report, "ok %d\n", pid)
	// Close the report pipe by putting /dev/null in its place, so that fd 1
	// is never reused by a file a stray write would corrupt.
	if dn, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		_ = unix.Dup3(int(dn.Fd()), 1, 0)
		dn.Close()
	} else {
		report.Close()
	}

	var copies sync.WaitGroup
	copyOut := func(r *os.File, stream string) {
		defer copies.Done()
		defer r.Close()
		if jr == nil {
			io.Copy(io.Discard, r)
			return
		}
		w := jr.StreamWriter(spec.Unit, spec.Ident, pid, stream)
		io.Copy(w, r)
		w.Close()
	}
	copies.Add(2)
	go copyOut(outR, journal.StreamStdout)
	go copyOut(errR, journal.StreamStderr)

	mainDone := make(chan struct{})
	go func() {
		// Reap everything: the main process and orphans of the unit.
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, 0, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			if got == pid {
				_ = writeJSONAtomic(filepath.Join(dir, shimExitFile), shimExit{WaitStatus: uint32(ws), Time: time.Now()})
				close(mainDone)
			}
		}
	}()
	if spec.Heartbeat != "" && spec.HeartbeatTTL > 0 {
		go watchHeartbeat(ctx, spec, jr, pid, cg, mainDone)
	}
	<-mainDone
	copies.Wait()
	return 0
}

// watchHeartbeat stops the unit when fleetd stopped renewing the machine's
// lease for longer than its TTL.
func watchHeartbeat(ctx context.Context, spec shimSpec, jr *journal.Journal, pid int, cg *cgroup, mainDone <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-mainDone:
			return
		case <-tick.C:
		}
		st, err := os.Stat(spec.Heartbeat)
		if err != nil || time.Since(st.ModTime()) <= spec.HeartbeatTTL {
			continue
		}
		if jr != nil {
			jr.Log(spec.Unit, "fleetd", os.Getpid(), fmt.Sprintf(
				"%s: fleetd has not renewed the machine's lease for %v (agent_ttl %v); stopping the unit, it is being rescheduled.",
				spec.Unit, time.Since(st.ModTime()).Round(time.Millisecond), spec.HeartbeatTTL))
		}
		sig := syscall.Signal(spec.KillSignal)
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		signalUnit(pid, cg, sig)
		if sig != syscall.SIGKILL {
			signalUnit(pid, cg, syscall.SIGCONT)
		}
		wait := spec.TimeoutStop
		if wait <= 0 || wait > 90*time.Second {
			wait = 90 * time.Second
		}
		select {
		case <-mainDone:
		case <-time.After(wait):
		}
		if cg != nil {
			if len(cg.pids()) > 0 {
				cg.kill()
			}
		}
		syscall.Kill(-pid, syscall.SIGKILL)
		return
	}
}

func signalUnit(pid int, cg *cgroup, sig syscall.Signal) {
	syscall.Kill(-pid, sig)
	if cg != nil {
		for _, p := range cg.pids() {
			syscall.Kill(p, sig)
		}
	}
}

// parseShimReport parses the shim's "ok PID" / "err ERRNO MSG" line.
func parseShimReport(line string) (int, error) {
	var word string
	var n int
	if _, err := fmt.Sscanf(line, "%s %d", &word, &n); err != nil {
		return 0, fmt.Errorf("shim: bad report %q", line)
	}
	switch word {
	case "ok":
		return n, nil
	case "err":
		msg := line
		if i := len(word) + 1 + len(strconv.Itoa(n)) + 1; i <= len(line) {
			msg = line[i:]
		}
		return 0, &shimError{errno: syscall.Errno(n), msg: msg}
	}
	return 0, fmt.Errorf("shim: bad report %q", line)
}

type shimError struct {
	errno syscall.Errno
	msg   string
}

func (e *shimError) Error() string { return e.msg }
func (e *shimError) Unwrap() error { return e.errno }
