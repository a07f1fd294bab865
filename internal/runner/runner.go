// Package runner defines the interface between the agent and whatever runs
// units on a machine: the built-in exec supervisor (internal/runner/exec,
// the default) or systemd over D-Bus (later).
//
// Contract:
//  1. Load registers (or replaces) a unit definition; it does not start it.
//     A unit whose file is invalid still loads, with LoadState "error".
//  2. Start and Stop enqueue a job and return at once; the outcome shows up
//     in States() and is announced on Changed().
//  3. Unload stops the unit (waiting for it, bounded by ctx) and forgets it.
//  4. States reports every loaded unit in systemd's words.
//  5. Implementations are safe for concurrent use.
package runner

import (
	"context"
	"errors"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

// ErrNotLoaded is returned for operations on a unit the runner does not know.
var ErrNotLoaded = errors.New("unit not loaded")

// Unit is what the agent hands to the runner.
type Unit struct {
	Name    string
	Hash    string
	Options []fleet.UnitOption
}

// State is a unit's state in systemd's words.
type State struct {
	LoadState   string // loaded, not-found, error
	ActiveState string // activating, active, deactivating, inactive, failed
	SubState    string // start-pre, start, start-post, running, exited, stop, stop-sigterm, stop-sigkill, stop-post, dead, failed, auto-restart
	Since       time.Time
	MainPID     int
	Hash        string
	// Result is systemd's result of the unit's last run: "success",
	// "exit-code", "signal", "core-dump", "timeout", "oom-kill",
	// "start-limit-hit" (also "resources", "protocol", "dependency");
	// "" when it never ran.
	Result string
	// Exit is how the main process of the last run ended, as systemd
	// shows it: "code=exited, status=3/NOTIMPLEMENTED",
	// "code=killed, status=9/KILL"; "" before it ends.
	Exit string
}

// ExecResult records one finished (or running) Exec* command.
type ExecResult struct {
	Kind   string // ExecStartPre, ExecStart, ExecStartPost, ExecStop, ExecStopPost
	Cmd    string
	PID    int
	Code   string // exited, killed
	Status int    // exit status or signal number
	Start  time.Time
	End    time.Time
}

// Status is the detail `fleetctl status` shows (systemctl status style).
type Status struct {
	Name        string
	Description string
	UnitPath    string
	State
	Processes []Process
	Execs     []ExecResult
	Restarts  int
	Error     string // load error, if LoadState is "error"
	// Triggers is the unit a .timer activates; Trigger, when it elapses
	// next (zero: not active, or no trigger armed).
	Triggers string
	Trigger  time.Time
}

// Process is one live process of a unit.
type Process struct {
	PID int
	Cmd string
}

// Runner runs units on this machine.
type Runner interface {
	Load(ctx context.Context, u Unit) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Unload(ctx context.Context, name string) error
	States() map[string]State
	Status(name string) (Status, error)
	// Changed receives (coalesced) after any state change.
	Changed() <-chan struct{}
}
