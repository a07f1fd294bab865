package timer

import (
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// Target returns the unit the timer unitName activates, reading only
// Unit=: its last non-empty [Timer] Unit= value, else unitName with
// ".service" for ".timer". For a timer that parses, it is ParseTimer's
// Unit; it is the cheap reading for callers that need nothing else (the
// engine's placement, the API's listing).
func Target(unitName string, opts []fleet.UnitOption) string {
	target := ""
	for _, o := range opts {
		if o.Section == "Timer" && o.Name == "Unit" {
			if v := strings.TrimSpace(o.Value); v != "" {
				target = v
			}
		}
	}
	if target == "" {
		target = strings.TrimSuffix(unitName, ".timer") + ".service"
	}
	return target
}
