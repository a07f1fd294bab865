package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
)

// exitInterrupted is the exit code of a blocking rollout interrupted by
// the user (the rollout goes on in the cluster).
const exitInterrupted = 130

// gateFlags are the flags of rollout, rollout undo and apply.
type gateFlags struct {
	maxParallel     int
	maxSurge        int
	minHealthyTime  time.Duration
	healthyDeadline time.Duration
	autoRevert      bool
	noBlock         bool
}

func (f *gateFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.IntVar(&f.maxParallel, "max-parallel", 1, "How many targets are replaced at once (a batch)")
	fs.IntVar(&f.maxSurge, "max-surge", 0, "How many targets of a batch may start their new version on another machine before their old one stops (where placement allows; the others are replaced in place)")
	fs.DurationVar(&f.minHealthyTime, "min-healthy-time", 10*time.Second, "How long a target must stay active/running (and its checks passing) to count as healthy")
	fs.DurationVar(&f.healthyDeadline, "healthy-deadline", 5*time.Minute, "How long a target may take to become healthy before the rollout fails")
	fs.BoolVar(&f.autoRevert, "auto-revert", false, "When the rollout fails, move the targets already replaced back to the previous revision")
	fs.BoolVar(&f.noBlock, "no-block", false, "Start the rollout and exit; follow it with 'fleetctl rollout status UNIT'")
}

// check refuses what cannot be done before anything is sent.
func (f *gateFlags) check() error {
	switch {
	case f.maxSurge < 0:
		return fmt.Errorf("--max-surge must not be negative")
	case f.maxParallel < 1:
		return fmt.Errorf("--max-parallel must be at least 1")
	}
	return nil
}

func (f *gateFlags) gates() client.RolloutGates {
	g := client.Gates(f.maxParallel, f.minHealthyTime, f.healthyDeadline, f.autoRevert)
	g.MaxSurge = f.maxSurge
	return g
}

func (a *app) cmdRollout() *cobra.Command {
	var gf gateFlags
	cmd := &cobra.Command{
		Use:   "rollout [--max-parallel N] [--max-surge N] [--min-healthy-time D] [--healthy-deadline D] [--auto-revert] [--no-block] UNIT_FILE...",
		Short: "Roll a new version of units or templates out to what runs them, batch by batch",
		Long: `Give the cluster the local file of each unit or template and replace what runs
it batch by batch: for a template every launched instance, for a global unit
every machine it runs on (one machine per batch with --max-parallel 1), for a
unit the unit itself. A batch counts as healthy when each of its targets is
active/running for --min-healthy-time (and its [X-Service] checks pass); a
batch that is not healthy by --healthy-deadline fails the rollout, which stops
there, and with --auto-revert moves what it replaced back to the previous
revision under the same gates.

A target is replaced in place (its endpoints are deregistered, it stops,
then starts with the new file), unless --max-surge allows it to surge: then
its new version starts on another machine where placement allows, beside
the old one, which stops only once the new one is healthy. At most
--max-surge targets surge at once; a global unit never does.

The rollout lives in the cluster, driven by the engine leader: it goes on
when fleetctl exits. fleetctl follows it and prints its progress until it is
over (exit 0 when done, 1 when it failed, was reverted or aborted), unless
--no-block is given. Interrupting fleetctl does not stop the rollout.

Subcommands:
	rollout status UNIT [-o json]     where a rollout is, target by target
	rollout pause UNIT                start no new batch (the one in flight goes on)
	rollout resume UNIT               go on with a paused rollout
	rollout abort UNIT                stop it where it is
	rollout undo UNIT [--to-revision N] [gate flags] [--no-block]
	                                  roll back to an earlier revision (default:
	                                  the one before the current), under the same gates

A template without launched instances gets the new file but nothing is
rolled: fleetctl says so and exits 1. See also: history, diff, apply.

Roll out a new web@.service to its instances two at a time:
	fleetctl rollout --max-parallel 2 web@.service`,
	}
	gf.register(cmd)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			a.errf("One unit file must be provided")
			return 1
		}
		if err := gf.check(); err != nil {
			a.errf("Error: %v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		exit := 0
		for _, arg := range dedupArgs(args) {
			name := unitName(arg)
			path := unitArgPath(arg)
			opts, err := readUnitFile(path)
			if err != nil {
				a.errf("Error reading unit file %s: %v", path, err)
				exit = 1
				continue
			}
			if opts == nil {
				a.errf("Unable to find unit file %s", path)
				exit = 1
				continue
			}
			e := a.startRollout(c, name, opts, gf)
			if e == exitInterrupted {
				return e
			}
			exit = max(exit, e)
		}
		return exit
	})
	cmd.AddCommand(a.cmdRolloutStatus(), a.cmdRolloutAction("pause"), a.cmdRolloutAction("resume"),
		a.cmdRolloutAction("abort"), a.cmdRolloutUndo())
	return cmd
}

// startRollout posts the rollout of name to opts and follows it (unless
// --no-block). It returns the exit code.
func (a *app) startRollout(c *client.Client, name string, opts []fleet.UnitOption, gf gateFlags) int {
	r, err := c.StartRollout(a.ctx, name, client.FromFleetOptions(opts), gf.gates())
	return a.rolloutStarted(c, name, r, err, gf.noBlock)
}

// rolloutStarted reports the answer to a rollout (or undo) request and
// follows the rollout unless noBlock.
func (a *app) rolloutStarted(c *client.Client, name string, r *client.Rollout, err error, noBlock bool) int {
	if client.IsCode(err, http.StatusUnprocessableEntity) {
		a.errf("%s", client.Message(err))
		a.errf("The cluster has the new file of %s (what is not running uses it), but no rollout was started.", name)
		return 1
	}
	if err != nil {
		a.errf("Error rolling out %s: %s", name, client.Message(err))
		return 1
	}
	verb := "Rollout"
	if r.Undo {
		verb = "Undo"
	}
	a.out("%s of %s to revision %d (%s) started: %s", verb, name, r.ToRevision, shortHash(r.ToHash, false), targetCount(r.Rollout, len(r.Targets)))
	if noBlock {
		return 0
	}
	return a.followRollout(c, name, r)
}

// targetCount words n targets of r: "4 instances", "3 machines", "1 unit".
func targetCount(r rollout.Rollout, n int) string {
	word := "unit"
	switch {
	case r.Global:
		word = "machine"
	case fleet.IsTemplate(r.Unit):
		word = "instance"
	}
	if n != 1 {
		word += "s"
	}
	return fmt.Sprintf("%d %s", n, word)
}

// followRollout polls name's rollout until it is over, printing its
// progress whenever it changes. It returns 0 when the rollout is done, 1
// when it failed, was reverted or aborted, exitInterrupted when the user
// interrupted fleetctl.
func (a *app) followRollout(c *client.Client, name string, r *client.Rollout) int {
	last, lastErr := "", ""
	for {
		if r != nil {
			if r.Progress != last {
				last = r.Progress
				a.out("%s: %s", name, r.Progress)
			}
			if r.Phase.Terminal() {
				return a.rolloutOutcome(c, name, r)
			}
		}
		t := time.NewTimer(a.rolloutPoll)
		select {
		case <-a.ctx.Done():
			t.Stop()
			a.errf("Interrupted: the rollout goes on; follow it with: fleetctl rollout status %s", name)
			return exitInterrupted
		case <-t.C:
		}
		next, err := c.Rollout(a.ctx, name)
		switch {
		case err != nil && a.ctx.Err() != nil:
			// Interrupted during the request: said above at the next turn.
		case client.IsNotFound(err):
			a.errf("Error following the rollout of %s: %s", name, client.Message(err))
			return 1
		case err != nil:
			// fleetd may be failing over: keep trying, say it once.
			if msg := client.Message(err); msg != lastErr {
				lastErr = msg
				a.errf("Warning: cannot read the rollout of %s (retrying): %s", name, msg)
			}
		default:
			lastErr = ""
			r = next
		}
	}
}

// rolloutOutcome reports a rollout that is over and returns its exit code.
// For each target that failed it shows the last lines of its journal (from
// the machine it failed on), where the unit's own words about the failure
// are.
func (a *app) rolloutOutcome(c *client.Client, name string, r *client.Rollout) int {
	if r.Phase == rollout.PhaseDone {
		return 0
	}
	reason := r.Reason
	if reason == "" {
		reason = "no reason recorded"
	}
	a.errf("Rollout of %s %s: %s", name, r.Phase, reason)
	for _, t := range r.Targets {
		if t.Message != "" && !strings.Contains(reason, t.Message) {
			a.errf("\t%s: %s", a.targetLabel(r.Rollout, t.Name), t.Message)
		}
	}
	for _, t := range r.Targets {
		// The targets that failed, and the one the reason names (moved
		// back since, it no longer says so itself).
		named := strings.HasPrefix(r.Reason, t.Name+":") || strings.HasPrefix(r.Reason, "revert failed: "+t.Name+":")
		if t.Status != rollout.TargetFailed && t.Status != rollout.TargetRevertFailed && !named {
			continue
		}
		unit, machine := t.Name, t.Surge
		if r.Global {
			unit, machine = r.Unit, t.Name
		}
		var buf strings.Builder
		ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
		err := c.Journal(ctx, unit, rolloutJournalLines, false, "", machine, &buf)
		cancel()
		if err != nil || strings.TrimSpace(buf.String()) == "" {
			continue
		}
		a.errf("Last lines of the journal of %s:", a.targetLabel(r.Rollout, t.Name))
		for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
			a.errf("\t%s", line)
		}
	}
	return 1
}

// rolloutJournalLines is how much of a failed target's journal a failed
// rollout shows.
const rolloutJournalLines = 8

// targetLabel names a target for people: a unit name, or a machine legend
// for a global rollout.
func (a *app) targetLabel(r rollout.Rollout, name string) string {
	if r.Global {
		return a.legend(name, false)
	}
	return name
}

func (a *app) cmdRolloutStatus() *cobra.Command {
	var output string
	var full bool
	cmd := &cobra.Command{
		Use:   "status [-o json] [-l|--full] UNIT",
		Short: "Show where the rollout of a unit is, target by target",
		Long: `Print the last rollout of UNIT: its phase, the revisions it moves between,
its gates, its progress and one line per target (an instance, the unit, or a
machine of a global unit):
	NAME  STATUS  SINCE  MESSAGE
SINCE is when the target was moved; MESSAGE says why it failed.`,
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, `Output format: "table" or "json"`)
	cmd.Flags().BoolVarP(&full, "full", "l", false, "Do not ellipsize machine IDs and hashes")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("One unit must be provided")
			return 1
		}
		if err := checkOutputFormat(output); err != nil {
			a.errf("%v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		name := unitName(args[0])
		r, err := c.Rollout(a.ctx, name)
		if err != nil {
			a.errf("Error retrieving the rollout of %s: %s", name, client.Message(err))
			return 1
		}
		if output == outputJSON {
			if err := writeJSON(a.stdout, r); err != nil {
				a.errf("%v", err)
				return 1
			}
			return 0
		}
		a.printRolloutStatus(r, full)
		return 0
	})
	return cmd
}

// printRolloutStatus prints r for people.
func (a *app) printRolloutStatus(r *client.Rollout, full bool) {
	kind := "Rollout"
	if r.Undo {
		kind = "Undo"
	}
	a.out("%s of %s: %s", kind, r.Unit, r.Phase)
	a.out("Revisions:\t%d (%s) -> %d (%s)", r.FromRevision, shortHash(r.FromHash, full), r.ToRevision, shortHash(r.ToHash, full))
	a.out("Gates:\t\tmax-parallel %d, min-healthy-time %s, healthy-deadline %s, auto-revert %t",
		r.MaxParallel, r.MinHealthyTime, r.HealthyDeadline, r.AutoRevert)
	started := formatTime(r.Created)
	if r.User != "" {
		started += " by " + r.User
	}
	a.out("Started:\t%s", started)
	a.out("Progress:\t%s", r.Progress)
	if r.Reason != "" && !strings.Contains(r.Progress, r.Reason) {
		a.out("Reason:\t\t%s", r.Reason)
	}
	rows := make([][]string, 0, len(r.Targets))
	for _, t := range r.Targets {
		name := t.Name
		if r.Global {
			name = a.legend(t.Name, full)
		}
		since := "-"
		if !t.Started.IsZero() {
			since = formatTime(t.Started)
		}
		rows = append(rows, []string{name, string(t.Status), since, dash(t.Message)})
	}
	a.out("")
	_ = renderTable(a.stdout, []string{"name", "status", "since", "message"}, rows, false)
}

// formatTime is how rollout verbs print a time: local, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02T15:04:05")
}

// cmdRolloutAction is rollout pause, resume or abort.
func (a *app) cmdRolloutAction(action string) *cobra.Command {
	short := map[string]string{
		"pause":  "Start no new batch of a rollout (the batch in flight goes on)",
		"resume": "Go on with a paused rollout",
		"abort":  "Stop a rollout where it is (what was replaced stays replaced)",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " UNIT",
		Short: short,
		Long:  short + ".",
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("One unit must be provided")
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		name := unitName(args[0])
		var r *client.Rollout
		var err error
		switch action {
		case "pause":
			r, err = c.PauseRollout(a.ctx, name)
		case "resume":
			r, err = c.ResumeRollout(a.ctx, name)
		default:
			r, err = c.AbortRollout(a.ctx, name)
		}
		if err != nil {
			a.errf("Error: cannot %s the rollout of %s: %s", action, name, client.Message(err))
			return 1
		}
		a.out("Rollout of %s %s: %s", name, r.Phase, r.Progress)
		return 0
	})
	return cmd
}

func (a *app) cmdRolloutUndo() *cobra.Command {
	var gf gateFlags
	var toRevision int
	cmd := &cobra.Command{
		Use:   "undo [--to-revision N] [--max-parallel N] [--min-healthy-time D] [--healthy-deadline D] [--auto-revert] [--no-block] UNIT",
		Short: "Roll a unit or template back to an earlier revision, under the same gates",
		Long: `Roll UNIT back to revision N (see fleetctl history UNIT), or by default to the
revision before the current one, as a new rollout with the same gates as
fleetctl rollout. The old file becomes the newest revision. fleetctl follows
the rollout until it is over unless --no-block is given.`,
	}
	gf.register(cmd)
	cmd.Flags().IntVar(&toRevision, "to-revision", 0, "Revision to go back to (0: the one before the current revision)")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("One unit must be provided")
			return 1
		}
		if err := gf.check(); err != nil {
			a.errf("Error: %v", err)
			return 1
		}
		if toRevision < 0 {
			a.errf("Error: --to-revision must not be negative")
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		name := unitName(args[0])
		r, err := c.UndoRollout(a.ctx, name, toRevision, gf.gates())
		return a.rolloutStarted(c, name, r, err, gf.noBlock)
	})
	return cmd
}
