// Package procutil runs the child processes of fleet-bench and of the
// end-to-end test cluster (internal/testcluster): it builds fleetd, starts
// a process and waits for it in the background, waits for it to be ready,
// stops it, and cleans up after it as a child subreaper. It is not test
// code (fleet-bench uses it) and imports nothing of fleet's but orphans.
package procutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleetd/fleet/internal/orphans"
)

// BuildFleetd builds cmd/fleetd, and cmd/fleet-shim next to it (fleetd's
// unit shims), into dir and returns fleetd's path.
func BuildFleetd(ctx context.Context, dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/fleetd", "./cmd/fleet-shim")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fleetd ./cmd/fleet-shim: %v\n%s", err, b)
	}
	return filepath.Join(dir, "fleetd"), nil
}

// Proc is a started process, waited for in the background.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd and waits for it in the background. read, if not nil,
// runs first in the waiting goroutine: it reads cmd's output pipe to its
// end (a pipe must be read before Wait).
func Start(cmd *exec.Cmd, read func()) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		if read != nil {
			read()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartFleetd starts the fleetd bin with args, its output (text logs) to
// log, in a process group of its own: its units are in theirs, so a signal
// to fleetd is not one to them.
func StartFleetd(bin string, args []string, log io.Writer) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FLEET_LOG_FORMAT=text")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return Start(cmd, nil)
}

// Pid is the process's ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and was waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits d for the process to exit, then kills it.
// It reports whether the process exited within d.
func (p *Proc) Stop(d time.Duration) bool {
	p.Signal(syscall.SIGTERM)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// ErrExited is Await's error when the process exited before it was ready.
var ErrExited = errors.New("exited early")

// errNotReady is Await's error when the time ran out.
var errNotReady = errors.New("not ready")

// Await calls ready every interval until it returns true (nil), the
// process exits (ErrExited), or d passes or ctx ends (an error that is not
// ErrExited).
func (p *Proc) Await(ctx context.Context, d, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.Exited() {
			return ErrExited
		}
		if ready() {
			return nil
		}
		time.Sleep(interval)
	}
	return errNotReady
}

// Listening is a readiness test for Await: addr accepts a TCP connection.
func Listening(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// Log collects a process's output: an io.Writer safe for concurrent use.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BecomeSubreaper makes this process adopt the orphans of the processes it
// starts (a fleetd killed with SIGKILL leaves its units and shims running,
// as fleet's do), so that KillOrphans can clean them up.
func BecomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// KillOrphans kills and reaps the processes this process adopted, in up to
// rounds rounds: a unit in its own process group is adopted only when its
// shim dies, so each round may find the next level. Run it after every
// child of ours has been waited for.
func KillOrphans(rounds int) {
	for range rounds {
		killed := orphans.Kill()
		if len(killed) == 0 {
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, pid := range killed {
			orphans.Reap(pid, deadline)
		}
	}
}
