package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Exit codes of diff, as diff(1)'s.
const (
	diffSame    = 0
	diffChanged = 1
	diffTrouble = 2
)

// diffContext is the number of unchanged lines around a change.
const diffContext = 3

func (a *app) cmdDiff() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff UNIT_FILE...",
		Short: "Show how local unit files differ from the cluster's",
		Long: `Print a unified diff from the cluster's file of each unit (as fleetctl cat
prints it) to the local file, both in fleet's serialization, so that comments,
blank lines and spacing that do not change the unit do not show. A unit that
is not in the cluster shows as all added.

Exit status as diff(1): 0 when every file is the same, 1 when one differs, 2
on trouble.

See what fleetctl rollout would change:
	fleetctl diff web@.service`,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			a.errf("One unit file must be provided")
			return diffTrouble
		}
		c := a.client()
		if c == nil {
			return diffTrouble
		}
		exit := diffSame
		for _, arg := range dedupArgs(args) {
			exit = max(exit, a.diffUnit(c, arg))
		}
		return exit
	})
	return cmd
}

// diffUnit prints the diff of one argument and returns its exit code.
func (a *app) diffUnit(c *client.Client, arg string) int {
	name := unitName(arg)
	local, err := findLocalUnit(arg)
	if err != nil {
		a.errf("Error: %v", err)
		return diffTrouble
	}
	if local == nil {
		a.errf("Error: unable to find unit file %s", unitArgPath(arg))
		return diffTrouble
	}
	u, err := c.Unit(a.ctx, name)
	if err != nil {
		a.errf("Error retrieving unit %s: %v", name, err)
		return diffTrouble
	}
	oldName, oldText := "/dev/null", ""
	if u != nil {
		oldName = name + " (cluster)"
		oldText = string(unitfile.Serialize(client.ToFleetOptions(u.Options)))
	}
	newText := string(unitfile.Serialize(local.options))
	if u != nil && oldText == newText {
		return diffSame
	}
	writeUnifiedDiff(a.stdout, oldName, local.path, splitLines(oldText), splitLines(newText))
	return diffChanged
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// editOp is one line of a line diff: ' ' kept, '-' removed, '+' added.
type editOp struct {
	kind byte
	line string
}

// maxLCSCells bounds the LCS table; beyond it the middle is shown as
// removed then added (unit files are small: this is never reached in
// practice).
const maxLCSCells = 4 << 20

// lineDiff computes an edit script from a to b by longest common
// subsequence, after trimming the common prefix and suffix.
func lineDiff(a, b []string) []editOp {
	var ops []editOp
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	for _, l := range a[:pre] {
		ops = append(ops, editOp{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	if (n+1)*(m+1) > maxLCSCells {
		for _, l := range ma {
			ops = append(ops, editOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, editOp{'+', l})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int, n+1)
		for i := range lcs {
			lcs[i] = make([]int, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, editOp{' ', ma[i]})
				i++
				j++
			case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
				ops = append(ops, editOp{'-', ma[i]})
				i++
			default:
				ops = append(ops, editOp{'+', mb[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, editOp{' ', l})
	}
	return ops
}

// writeUnifiedDiff writes the unified diff (diff -u style, 3 lines of
// context) from a to b; nothing when they are equal.
func writeUnifiedDiff(w io.Writer, aName, bName string, a, b []string) {
	ops := lineDiff(a, b)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", aName, bName)
	// Group changes into hunks: a hunk spans from diffContext lines
	// before a change to diffContext lines after the last change that is
	// at most 2*diffContext unchanged lines away.
	for start := 0; start < len(ops); {
		first := start
		for first < len(ops) && ops[first].kind == ' ' {
			first++
		}
		if first == len(ops) {
			break
		}
		lo := max(start, first-diffContext)
		end := first
		for {
			for end < len(ops) && ops[end].kind != ' ' {
				end++
			}
			next := end
			for next < len(ops) && ops[next].kind == ' ' {
				next++
			}
			if next == len(ops) || next-end > 2*diffContext {
				break
			}
			end = next
		}
		hi := min(len(ops), end+diffContext)
		// Line numbers of the hunk's start in a and b.
		aLine, bLine := 1, 1
		for _, op := range ops[:lo] {
			if op.kind != '+' {
				aLine++
			}
			if op.kind != '-' {
				bLine++
			}
		}
		aCount, bCount := 0, 0
		for _, op := range ops[lo:hi] {
			if op.kind != '+' {
				aCount++
			}
			if op.kind != '-' {
				bCount++
			}
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(aLine, aCount), hunkRange(bLine, bCount))
		for _, op := range ops[lo:hi] {
			line := op.line
			fmt.Fprintf(w, "%c%s", op.kind, line)
			if !strings.HasSuffix(line, "\n") {
				fmt.Fprint(w, "\n\\ No newline at end of file\n")
			}
		}
		start = hi
	}
}

// hunkRange is a unified diff range: "l,n", "l" for one line, "l-1,0"
// for none.
func hunkRange(line, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", line-1)
	case 1:
		return fmt.Sprintf("%d", line)
	}
	return fmt.Sprintf("%d,%d", line, count)
}
