package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
//	spec.json  what to run (`fleet-shim DIR` only; a --serve shim gets it
//	           on its stdin, see shimserve.go)
//	main.json  the main process: PID and start time (written once started)
//	exit.json  the main process's wait status (written when it exits)
//
// The runner also gives the shim a pipe on its stdout, on which the shim
// reports one line, "ok PID" or "err ERRNO MESSAGE", then closes it.
//
// Heartbeat: when the spec names a heartbeat file, fleetd touches it each
// time it renews the machine's lease. If the file is older than the TTL,
// or missing for longer than the TTL (the data directory was removed),
// fleetd is gone or cut off from etcd, so the machine's units are being
// moved elsewhere: the shim stops the unit itself, as the runner would
// (shimstop.go): ExecStop=, KillSignal= as KillMode= says, SIGKILL after
// TimeoutStopSec=, ExecStopPost=. It writes stopping.json first, so that a
// runner still watching knows the unit was stopped by its shim.

// shimSpec is spec.json.
type shimSpec struct {
	Unit        string   `json:"unit"`
	Description string   `json:"description,omitempty"`
	Ident       string   `json:"ident"`
	Path        string   `json:"path"`
	Argv        []string `json:"argv"`
	Env         []string `json:"env"`
	Dir         string   `json:"dir"`
	Cgroup      string   `json:"cgroup,omitempty"` // v2
	// CgroupV1 maps v1 controllers to the unit cgroup's directories,
	// joined by the setup re-exec (setup.go), as are Rlimits.
	CgroupV1 map[string]string `json:"cgroupV1,omitempty"`
	Rlimits  []rlimitValue     `json:"rlimits,omitempty"`
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
	// KillMode= ("" is control-group) and SendSIGKILL=no.
	KillMode  string `json:"killMode,omitempty"`
	NoSIGKILL bool   `json:"noSIGKILL,omitempty"`
	// ExecStop= and ExecStopPost=, run by the shim when it stops the unit
	// itself; specifiers are expanded by the runner, environment
	// variables ($MAINPID, $SERVICE_RESULT ...) by the shim.
	Stop     []shimCmd `json:"stop,omitempty"`
	StopPost []shimCmd `json:"stopPost,omitempty"`
}

// shimCmd is one Exec line for the shim.
type shimCmd struct {
	Line          string `json:"line"` // specifiers expanded
	IgnoreFailure bool   `json:"ignoreFailure,omitempty"`
	Argv0         bool   `json:"argv0,omitempty"`
	NoEnv         bool   `json:"noEnv,omitempty"`
}

func (c shimCmd) prefix() execPrefix {
	return execPrefix{ignoreFailure: c.IgnoreFailure, argv0: c.Argv0, noEnv: c.NoEnv}
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
	// shimStoppingFile marks a unit the shim stops itself (heartbeat).
	shimStoppingFile = "stopping.json"
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

// ShimMain is the entry point of `fleet-shim DIR` and `fleetd shim DIR`
// (one unit, reported on stdout as "ok PID" or "err ERRNO MESSAGE"), and
// of `fleet-shim --serve` (many units; see shimserve.go). It returns the
// exit code.
func ShimMain(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: fleet-shim DIR or fleet-shim --serve (started by fleetd's runner)")
		return 2
	}
	srv := newShimServer()
	if args[0] == shimServeArg {
		return srv.serve(ctx, os.Stdin, os.NewFile(1, "report"))
	}
	report := os.NewFile(1, "report")
	ok := false
	srv.startUnit(ctx, args[0], nil, func(pid int, errno syscall.Errno, err error) {
		if err != nil {
			fmt.Fprintf(report, "err %d %s\n", int(errno), err)
			return
		}
		ok = true
		fmt.Fprintf(report, "ok %d\n", pid)
	})
	if !ok {
		return 1
	}
	// Close the report pipe by putting /dev/null in its place, so that fd 1
	// is never reused by a file a stray write would corrupt.
	if dn, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		_ = unix.Dup3(int(dn.Fd()), 1, 0)
		dn.Close()
	} else {
		report.Close()
	}
	srv.units.Wait()
	srv.close()
	return 0
}

// shim is one unit under a shim process.
type shim struct {
	srv    *shimServer
	spec   shimSpec
	dir    string
	jr     *journal.Journal
	pid    int // the main process
	cg     *cgroup
	copies sync.WaitGroup

	mainDone chan struct{} // closed once the main process is reaped
	mainWS   syscall.WaitStatus

	// Guarded by srv.mu.
	stopping bool          // the shim is stopping the unit (heartbeat)
	stopped  chan struct{} // closed when that stop is over
}

func (sh *shim) copyOut(r *os.File, pid int, ident, stream string) {
	defer sh.copies.Done()
	defer r.Close()
	if sh.jr == nil {
		io.Copy(io.Discard, r)
		return
	}
	w := sh.jr.StreamWriter(sh.spec.Unit, ident, pid, stream)
	io.Copy(w, r)
	w.Close()
}

// log writes a lifecycle line to the unit's journal.
func (sh *shim) log(format string, args ...any) {
	if sh.jr != nil {
		sh.jr.Log(sh.spec.Unit, "fleetd", os.Getpid(), fmt.Sprintf(format, args...))
	}
}

// heartbeat is fleetd's heartbeat file as a shim watches it.
type heartbeat struct {
	path     string
	lastBeat time.Time
}

// age returns how long ago fleetd last touched the heartbeat file. A
// missing (or unreadable) file counts as untouched since it was last seen,
// or since the shim started: the data directory was removed, or fleetd
// never came back to write it.
func (hb *heartbeat) age(now time.Time) time.Duration {
	if st, err := os.Stat(hb.path); err == nil {
		if st.ModTime().After(hb.lastBeat) {
			hb.lastBeat = st.ModTime()
		}
	}
	return now.Sub(hb.lastBeat)
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
