package cli

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

func (a *app) cmdRun() *cobra.Command {
	var noFollow bool
	cmd := &cobra.Command{
		Use:   "run [--no-follow] UNIT_FILE",
		Short: "Run a Type=oneshot unit once in the cluster, as a job, and wait for its result",
		Long: `Run a Type=oneshot unit to completion somewhere in the cluster (a job) and
exit with its result: 0 if it succeeded; if it failed, its main process's
exit status (3 for "exit 3", 128+N for signal N), or 1 when that is unknown.

The unit is read from the local file, as submit does. It must be
Type=oneshot: a job runs to completion, and only a oneshot's end says
whether it succeeded. [X-Fleet] Job=true is added to its options if it is
missing, so the file stored in the cluster carries it (and fleetctl cat
shows it). Earlier results of the job are cleared, the unit is submitted
(or replaced) and started, and its journal is followed (--no-follow to
skip that) until its result is recorded.

A job retries as its Restart= and StartLimit* say, then ends succeeded or
failed. A succeeded job is never run again, not even when its machine dies;
a failed job whose machine dies runs again elsewhere. A global job
([X-Fleet] Global=true) runs once on every matching machine: run waits for
every machine it is placed on and prints one line per machine.

Run a job and follow its output:
	fleetctl run migrate.service

Only wait for its result:
	fleetctl run --no-follow migrate.service`,
	}
	cmd.Flags().BoolVar(&noFollow, "no-follow", false, "Do not stream the job's journal; only wait for its result")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("One unit file must be provided.")
			return 1
		}
		return a.runJob(args[0], !noFollow)
	})
	return cmd
}

// runJob is fleetctl run.
func (a *app) runJob(arg string, follow bool) int {
	name := unitName(arg)
	path := unitArgPath(arg)
	opts, err := readUnitFile(path)
	if err != nil {
		a.errf("Unable to read unit file %s: %v", path, err)
		return 1
	}
	if opts == nil {
		a.errf("Unable to find unit file %s.", path)
		return 1
	}
	if fleet.IsTemplate(name) {
		a.errf("Unit %s is a template: run an instance of it.", name)
		return 1
	}
	typ, _ := unitfile.Value(opts, "Service", "Type")
	if typ = strings.TrimSpace(unitfile.JoinContinuations(typ)); typ != "oneshot" {
		if typ == "" {
			typ = "simple (the default)"
		}
		a.errf("Unit %s cannot be run as a job: its Type is %s, and fleetctl run needs Type=oneshot (a job runs to completion, and only a oneshot's end says whether it succeeded). Add Type=oneshot to its [Service] section.", name, typ)
		return 1
	}
	if req, _, err := unitfile.Requirements(name, opts); err != nil || !req.Job {
		opts = append(opts, fleet.UnitOption{Section: unitfile.FleetSection, Name: "Job", Value: "true"})
	}
	c := a.client()
	if c == nil {
		return 1
	}
	if err := c.DeleteJobs(a.ctx, name); err != nil {
		a.errf("Error clearing earlier runs of %s: %v", name, err)
		return 1
	}
	u, err := c.Unit(a.ctx, name)
	if err != nil {
		a.errf("Error retrieving unit %s: %v", name, err)
		return 1
	}
	if u == nil || unitHash(*u) != unitfile.Hash(opts) {
		if err := a.createUnit(c, name, opts); err != nil {
			a.errf("Error creating unit %s: %v", name, err)
			return 1
		}
	}
	if err := c.SetUnitTargetState(a.ctx, name, "launched"); err != nil {
		a.errf("Error starting unit %s: %v", name, err)
		return 1
	}
	if u, err = c.Unit(a.ctx, name); err != nil || u == nil {
		a.errf("Error retrieving unit %s: %v", name, err)
		return 1
	}
	hash, global := unitHash(*u), isGlobalUnit(*u)
	if global {
		a.out("Triggered global job %s", name)
	} else {
		a.out("Triggered job %s", name)
	}
	ctx, cancel := context.WithCancel(a.ctx)
	var wg sync.WaitGroup
	if follow {
		wg.Go(func() { a.followJob(ctx, c, name) })
	}
	runs, ok := a.waitForJob(c, name, hash, global)
	cancel()
	wg.Wait()
	if !ok {
		return 1
	}
	return a.printJobRuns(name, runs)
}

// followJob streams the job's journal until ctx ends: it retries while the
// unit is not loaded anywhere yet, and after a stream ends.
func (a *app) followJob(ctx context.Context, c *client.Client, name string) {
	w := &lockedWriter{w: a.stdout}
	for ctx.Err() == nil {
		err := c.Journal(ctx, name, 0, true, "short", "", w)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.debugf("journal of %s: %v", name, err)
		}
		t := time.NewTimer(a.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitForJob polls the job's records until its run is recorded (a global
// job: on every machine it is placed on, the same two polls in a row), and
// returns the records of its current file (hash). While it waits to be
// placed, the scheduler's reason is printed. ok is false if the wait was
// interrupted.
func (a *app) waitForJob(c *client.Client, name, hash string, global bool) ([]client.JobRun, bool) {
	shown := map[string]string{}
	var prev string
	for round := 0; ; round++ {
		runs, err := c.Jobs(a.ctx, name)
		if err != nil {
			a.debugf("Error retrieving runs of %s: %v", name, err)
		}
		runs = currentRuns(runs, hash)
		switch {
		case err != nil:
		case !global && len(runs) > 0:
			return runs[:1], true
		case global && len(runs) > 0:
			states, err := c.UnitStatesFiltered(a.ctx, name, "")
			if err != nil {
				a.debugf("Error retrieving states of %s: %v", name, err)
				break
			}
			placed := map[string]bool{}
			for _, s := range states {
				if sameHash(s.Hash, hash) {
					placed[s.MachineID] = true
				}
			}
			done := map[string]bool{}
			for _, r := range runs {
				done[r.MachineID] = true
			}
			all := true
			for m := range placed {
				all = all && done[m]
			}
			key := strings.Join(slices.Sorted(maps.Keys(done)), ",")
			if all && key == prev {
				return runs, true
			}
			if all {
				prev = key
			} else {
				prev = ""
			}
		}
		if round%4 == 0 {
			a.showReason(c, name, shown)
		}
		if !a.sleep() {
			a.errf("Error waiting for job %s: %v", name, a.ctx.Err())
			return nil, false
		}
	}
}

// currentRuns returns the runs of the file with hash.
func currentRuns(runs []client.JobRun, hash string) []client.JobRun {
	var out []client.JobRun
	for _, r := range runs {
		if sameHash(r.Hash, hash) {
			out = append(out, r)
		}
	}
	return out
}

// printJobRuns prints one line per run and returns 0 if all succeeded,
// else the exit status of the first failed run's main process as a shell
// gives it (status N: N; killed by signal S: 128+S), or 1 when unknown.
func (a *app) printJobRuns(name string, runs []client.JobRun) int {
	exit := 0
	for _, r := range runs {
		on := a.legend(r.MachineID, false)
		if r.Result == "succeeded" {
			a.out("Job %s succeeded on %s", name, on)
			continue
		}
		if exit == 0 {
			exit = jobExitCode(r.Exit)
		}
		why := r.UnitResult
		if why == "" {
			why = r.Result
		}
		if r.Exit != "" {
			why += " (" + r.Exit + ")"
		}
		a.errf("Job %s failed on %s: %s", name, on, why)
	}
	if exit != 0 {
		a.errf("See fleetctl status %s and fleetctl journal %s", name, name)
	}
	return exit
}

// isJobUnit reports whether the unit's [X-Fleet] Job= is true.
func isJobUnit(u client.Unit) bool {
	req, _, _ := unitfile.Requirements(u.Name, client.ToFleetOptions(u.Options))
	return req.Job
}

// jobFinished returns, for a Job unit, the records of its current file's
// runs, if there are any (start of a Job unit is over when it has one).
func (a *app) jobFinished(c *client.Client, u client.Unit) ([]client.JobRun, bool) {
	if !isJobUnit(u) {
		return nil, false
	}
	runs, err := c.Jobs(a.ctx, u.Name)
	if err != nil {
		a.debugf("Error retrieving runs of %s: %v", u.Name, err)
		return nil, false
	}
	runs = currentRuns(runs, unitHash(u))
	return runs, len(runs) > 0
}

// lockedWriter serializes writes (the journal stream and the result lines
// share stdout).
type lockedWriter struct {
	mu sync.Mutex
	w  interface{ Write([]byte) (int, error) }
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// jobExitCode turns a run's Exit ("code=exited, status=3/NOTIMPLEMENTED",
// "code=killed, status=9/KILL") into the exit status a shell would give:
// N for an exit with N, 128+S for signal S; 1 when it is unknown or 0
// (the job failed all the same: a timeout, a start limit).
func jobExitCode(exit string) int {
	code, rest, ok := strings.Cut(strings.TrimPrefix(exit, "code="), ", status=")
	if !ok {
		return 1
	}
	num, _, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || n <= 0:
		return 1
	case code == "exited":
		return min(n, 255)
	case code == "killed" || code == "dumped":
		return 128 + n
	}
	return 1
}
