package exec

import (
	"slices"

	"github.com/fleetd/fleet/internal/fleet"
)

// UnitOptions returns the options a loaded unit was loaded (or adopted)
// with, and whether the unit is loaded.
func (r *Runner) UnitOptions(name string) ([]fleet.UnitOption, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.units[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(u.opts), true
}
