package schedule

import (
	"sort"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// Unit is one unit as the scheduler sees it.
type Unit struct {
	Name    string
	Desired fleet.JobState // inactive units are never placed (and are removed from machines)
	Req     fleet.Requirements
}

// Snapshot is everything Schedule looks at.
type Snapshot struct {
	Machines []fleet.Machine     // live machines only (ID, Metadata, Capacity used; draining=true: rule 12)
	Units    []Unit              // templates excluded by the caller
	Current  map[string][]string // unit name -> machine IDs it is scheduled on now (may reference dead machines or be stale)

	// Strategy ranks the feasible machines (rule 14): StrategySpread ("",
	// the default: least loaded by unit count) or StrategyBinpack (least
	// free memory, then CPU: units fill machines). Any other value is
	// spread.
	Strategy string

	// MaxReasonEntries bounds the total number of Reason.PerMachine entries
	// in a Result (rule 11). 0 means DefaultMaxReasonEntries; a negative
	// value disables PerMachine altogether. Summaries are always present.
	MaxReasonEntries int
}

// The placement strategies (Snapshot.Strategy, rule 14).
const (
	StrategySpread  = "spread"
	StrategyBinpack = "binpack"
)

// DefaultMaxReasonEntries is the PerMachine budget used when
// Snapshot.MaxReasonEntries is 0.
const DefaultMaxReasonEntries = 1 << 18

// Result is the desired placement of every unit.
type Result struct {
	// Assign maps a unit to the machines it should be on (sorted). A
	// non-global unit has exactly one; inactive and unplaceable units are
	// absent.
	Assign map[string][]string
	// Reasons holds every non-inactive unit that got no machine (global
	// units: when no machine accepts them).
	Reasons map[string]fleet.Reason
}

// Change is one (unit, machine) placement added or removed.
type Change struct{ Unit, Machine string }

// Schedule computes the desired placement for the snapshot. It is pure and
// deterministic: the order of Machines, Units and Current's slices does not
// matter. See the package documentation for the rules.
func Schedule(s Snapshot) Result {
	st := newState(s)
	st.run()
	return st.result(s.MaxReasonEntries)
}

// Diff returns the placements to add and to remove to go from current to
// next, each sorted by unit then machine. Duplicate entries are ignored.
func Diff(current, next map[string][]string) (add, remove []Change) {
	set := func(m map[string][]string) map[Change]struct{} {
		out := make(map[Change]struct{})
		for u, ms := range m {
			for _, id := range ms {
				out[Change{u, id}] = struct{}{}
			}
		}
		return out
	}
	cur, nxt := set(current), set(next)
	for c := range nxt {
		if _, ok := cur[c]; !ok {
			add = append(add, c)
		}
	}
	for c := range cur {
		if _, ok := nxt[c]; !ok {
			remove = append(remove, c)
		}
	}
	sortChanges(add)
	sortChanges(remove)
	return add, remove
}

func sortChanges(cs []Change) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Unit != cs[j].Unit {
			return cs[i].Unit < cs[j].Unit
		}
		return cs[i].Machine < cs[j].Machine
	})
}

// isGlob reports whether a pattern has path.Match meta characters.
func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// literalPrefix is the part of a pattern before its first meta character.
func literalPrefix(p string) string {
	if i := strings.IndexAny(p, `*?[\`); i >= 0 {
		return p[:i]
	}
	return p
}
