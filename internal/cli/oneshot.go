package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/unitfile"
)

// A Type=oneshot unit without RemainAfterExit=yes never becomes active:
// it runs and goes back to inactive/dead (or failed). The fleet state
// (GET /state) cannot tell "ran and exited 0" from "not started yet" (both
// inactive/dead, and the state carries no result, exit status, start
// counter or timestamp), so start reads the unit's status text (GET
// /status/{name}: the "Main PID:"/"Process:" lines of the last run and
// its recent journal lines) from the machine the state names.

// isRunOnce reports whether u is a oneshot unit that does not remain
// active after its run.
func isRunOnce(u client.Unit) bool {
	opts := client.ToFleetOptions(u.Options)
	typ, _ := unitfile.Value(opts, "Service", "Type")
	if strings.TrimSpace(unitfile.JoinContinuations(typ)) != "oneshot" {
		return false
	}
	rae, _ := unitfile.Value(opts, "Service", "RemainAfterExit")
	remain, err := unitfile.ParseBool(strings.TrimSpace(unitfile.JoinContinuations(rae)))
	return err != nil || !remain
}

// runReport is what a unit's status text says about its last run.
type runReport struct {
	active string   // first word of the "Active:" line
	ran    bool     // some Exec* command of the last run finished
	run    string   // the run's "Main PID:" and "Process:" lines (identify the run)
	failed string   // "exit status 3", "killed by signal 15/TERM": the last failed command, if any
	status string   // exit status of the main command, e.g. "0"
	recent []string // the journal lines after the blank line
}

var execResultRE = regexp.MustCompile(`\(code=(\w+), status=([^)]*)\)`)

// parseRunReport reads systemctl-status style text (runner.FormatStatus).
func parseRunReport(text string) runReport {
	var r runReport
	var runLines []string
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if t == "" && i > 0 {
			for _, j := range lines[i+1:] {
				if strings.TrimSpace(j) != "" {
					r.recent = append(r.recent, j)
				}
			}
			break
		}
		label, rest, ok := strings.Cut(t, ": ")
		if !ok {
			continue
		}
		switch label {
		case "Active":
			r.active, _, _ = strings.Cut(rest, " ")
		case "Main PID", "Process":
			m := execResultRE.FindStringSubmatch(rest)
			if m == nil {
				continue // still running
			}
			runLines = append(runLines, t)
			r.ran = true
			code, st := m[1], m[2]
			num, _, _ := strings.Cut(st, "/")
			if label == "Main PID" {
				r.status = num
			}
			switch {
			case code == "exited" && num != "0":
				r.failed = "exit status " + num
			case code != "exited":
				r.failed = "killed by signal " + st
			}
		}
	}
	r.run = strings.Join(runLines, "\n")
	return r
}

// oneshotBaseline records, per machine, the last run of each named
// run-once unit that is loaded but not launched, so that start does not
// take that earlier run for the one it asked for.
func (a *app) oneshotBaseline(c *client.Client, names []string) map[string]map[string]string {
	base := map[string]map[string]string{}
	for _, name := range names {
		u, err := c.Unit(a.ctx, name)
		if err != nil || u == nil || u.DesiredState != "loaded" || !isRunOnce(*u) {
			continue
		}
		entries, err := c.Status(a.ctx, name, "")
		if err != nil {
			a.debugf("Error retrieving status of %s: %v", name, err)
			continue
		}
		runs := map[string]string{}
		for _, e := range entries {
			if e.Text != "" {
				runs[e.MachineID] = parseRunReport(e.Text).run
			}
		}
		base[name] = runs
	}
	return base
}

// oneshotVerdict is what oneshotOutcome makes of a run-once unit.
type oneshotVerdict int

const (
	oneshotUnknown oneshotVerdict = iota // no run seen: judge by state as other units
	oneshotEarlier                       // only the earlier run (baseline) is seen: keep waiting
	oneshotDone                          // the run is over and was reported
)

// oneshotOutcome judges a run-once unit whose current state is s. When
// the run it waits for is over (oneshotDone) it prints the outcome, and
// exit is 0 (ran and succeeded) or 1 (failed).
func (a *app) oneshotOutcome(c *client.Client, name string, s client.UnitState, baseline map[string]string) (v oneshotVerdict, exit int) {
	if s.SystemdActiveState != "inactive" && s.SystemdActiveState != "failed" {
		return oneshotUnknown, 0
	}
	entries, err := c.Status(a.ctx, name, s.MachineID)
	if err != nil {
		a.debugf("Error retrieving status of %s: %v", name, err)
		return oneshotUnknown, 0
	}
	var text string
	for _, e := range entries {
		if e.MachineID == s.MachineID && e.Text != "" {
			text = e.Text
		}
	}
	if text == "" {
		return oneshotUnknown, 0
	}
	r := parseRunReport(text)
	if !r.ran {
		return oneshotUnknown, 0 // not started yet (a start that failed before any command is the failed-state case)
	}
	if before, ok := baseline[s.MachineID]; ok && before == r.run {
		return oneshotEarlier, 0 // the earlier run, not ours yet
	}
	on := a.legend(s.MachineID, false)
	switch r.active {
	case "inactive":
		st := r.status
		if st == "" {
			st = "0"
		}
		a.out("Unit %s ran on %s (exit status %s)", name, on, st)
		return oneshotDone, 0
	case "failed":
		why := r.failed
		if why == "" {
			why = "failed"
		}
		a.errf("Unit %s failed on %s: %s", name, on, why)
		for _, l := range r.recent {
			a.errf("    %s", l)
		}
		a.errf("See fleetctl status %s and fleetctl journal %s", name, name)
		return oneshotDone, 1
	}
	return oneshotUnknown, 0
}

// describeRunOnce is the timeout text of a run-once unit.
func describeRunOnce(name string) string {
	return fmt.Sprintf("timed out waiting for unit %s to run", name)
}
