package unitfile

import "github.com/fleetd/fleet/internal/fleet"

// Value returns the value of the last option name in section, and whether
// there is one. Values are raw (see JoinContinuations).
func Value(opts []fleet.UnitOption, section, name string) (string, bool) {
	for i := len(opts) - 1; i >= 0; i-- {
		if opts[i].Section == section && opts[i].Name == name {
			return opts[i].Value, true
		}
	}
	return "", false
}

// Values returns the values of every option name in section, in order, with
// systemd's list semantics: an empty assignment clears the values before it
// (and is not itself returned).
func Values(opts []fleet.UnitOption, section, name string) []string {
	var out []string
	for _, o := range opts {
		if o.Section != section || o.Name != name {
			continue
		}
		if o.Value == "" {
			out = nil
			continue
		}
		out = append(out, o.Value)
	}
	return out
}

// Description returns the unit's [Unit] Description, or "".
func Description(opts []fleet.UnitOption) string {
	v, _ := Value(opts, "Unit", "Description")
	return v
}
