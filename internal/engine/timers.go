package engine

import (
	"slices"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
	"github.com/fleetd/fleet/internal/timer"
)

// timerPlacements makes the unit S that a launched .timer T activates
// follow T (its service runs on T's machine, started by internal/timerd
// there): when S is in the scheduler's input, its desired state is raised
// to at least loaded (in units and in byName, whose DesiredState the
// schedule entries carry) and T is added to its MachineOf. A global S,
// which runs everywhere anyway, keeps its requirements. A timer not
// launched, or whose S is not in the input (absent, a template, not
// parseable, a succeeded job), changes nothing. S's Req is copied before
// it is changed: the engine's requirement cache shares it.
func timerPlacements(units []schedule.Unit, byName map[string]fleet.Unit) {
	var index map[string]int
	for _, t := range units {
		if !strings.HasSuffix(t.Name, ".timer") || t.Desired != fleet.JobStateLaunched {
			continue
		}
		if index == nil {
			index = make(map[string]int, len(units))
			for i, u := range units {
				index[u.Name] = i
			}
		}
		i, ok := index[timer.Target(t.Name, byName[t.Name].Options)]
		if !ok || units[i].Name == t.Name {
			continue
		}
		s := &units[i]
		if s.Desired == fleet.JobStateInactive {
			s.Desired = fleet.JobStateLoaded
			if u, ok := byName[s.Name]; ok {
				u.DesiredState = fleet.JobStateLoaded
				byName[s.Name] = u
			}
		}
		if s.Req.Global || slices.Contains(s.Req.MachineOf, t.Name) {
			continue
		}
		s.Req.MachineOf = append(slices.Clip(s.Req.MachineOf), t.Name)
	}
}
