package unitfile

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// MaxRequirementValues is the most MachineOf, Conflicts or Replaces values
// (each) ValidateOptions accepts: the scheduler matches them against every
// unit on every machine.
const MaxRequirementValues = 1024

// FleetSection is the section that holds fleet's scheduling requirements.
const FleetSection = "X-Fleet"

// [X-Fleet] keys, current and legacy.
const (
	keyMachineID                = "MachineID"
	keyMachineOf                = "MachineOf"
	keyMachineMetadata          = "MachineMetadata"
	keyConflicts                = "Conflicts"
	keyGlobal                   = "Global"
	keyReplaces                 = "Replaces"
	keyStopOnDisconnect         = "StopOnDisconnect"
	keyLegacyMachineID          = "X-ConditionMachineID"
	keyLegacyMachineBootID      = "X-ConditionMachineBootID"
	keyLegacyMachineOf          = "X-ConditionMachineOf"
	keyLegacyMachineMetadata    = "X-ConditionMachineMetadata"
	keyLegacyConflicts          = "X-Conflicts"
	unrecognizedRequirementWarn = "unrecognized requirement in [X-Fleet] section: %q"
)

// isRequirementKey reports whether key is a known [X-Fleet] key.
func isRequirementKey(key string) bool {
	switch key {
	case keyMachineID, keyMachineOf, keyMachineMetadata, keyConflicts, keyGlobal, keyReplaces, keyStopOnDisconnect,
		keyLegacyMachineID, keyLegacyMachineBootID, keyLegacyMachineOf, keyLegacyMachineMetadata,
		keyLegacyConflicts:
		return true
	}
	return false
}

// fleetValues returns the values of every [X-Fleet] option, per key, in file
// order, with all [X-Fleet] sections merged, quoted multi-values split and
// specifiers expanded. keys lists the keys in order of first appearance.
func fleetValues(name string, opts []fleet.UnitOption) (values map[string][]string, keys []string) {
	values = make(map[string][]string)
	n := ParseName(name)
	expand := strings.Contains(name, ".")
	for _, o := range opts {
		if o.Section != FleetSection {
			continue
		}
		if _, ok := values[o.Name]; !ok {
			keys = append(keys, o.Name)
			values[o.Name] = nil
		}
		for _, v := range splitMultiValue(o.Value) {
			if expand {
				v = expandFleetSpecifiers(v, n)
			}
			values[o.Name] = append(values[o.Name], v)
		}
	}
	return values, keys
}

// splitMultiValue implements fleet's [X-Fleet] multi-value rule: a value
// that starts and ends with '"' is split on spaces outside quotes, and the
// quotes are dropped; any other value is one value.
func splitMultiValue(v string) []string {
	if !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) {
		return []string{v}
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// Requirements extracts a unit's [X-Fleet] requirements; name is the unit's
// name, used for the %n %N %p %i specifiers. Unknown keys give a warning
// each (not an error); a malformed glob in Conflicts or Replaces is an
// error. See the package documentation for the rules.
func Requirements(name string, opts []fleet.UnitOption) (fleet.Requirements, []string, error) {
	var req fleet.Requirements
	values, keys := fleetValues(name, opts)

	var warnings []string
	for _, k := range keys {
		if !isRequirementKey(k) {
			warnings = append(warnings, fmt.Sprintf(unrecognizedRequirementWarn, k))
		}
	}

	for _, k := range []string{keyMachineID, keyLegacyMachineID, keyLegacyMachineBootID} {
		if id := firstNonEmpty(values[k]); id != "" {
			req.MachineID = id
			break
		}
	}

	var peers, conflicts, replaces uniqueList
	peers.add(values[keyLegacyMachineOf]...)
	peers.add(values[keyMachineOf]...)
	req.MachineOf = peers.list

	var metaKeys []string
	meta := make(map[string]*uniqueList)
	for _, k := range []string{keyLegacyMachineMetadata, keyMachineMetadata} {
		for _, kv := range values[k] {
			key, val, ok := strings.Cut(kv, "=")
			if !ok || key == "" || val == "" || strings.Contains(val, "=") {
				continue
			}
			if meta[key] == nil {
				meta[key] = &uniqueList{}
				metaKeys = append(metaKeys, key)
			}
			meta[key].add(val)
		}
	}
	if len(metaKeys) > 0 {
		req.Metadata = make(map[string][]string, len(metaKeys))
		for _, k := range metaKeys {
			req.Metadata[k] = meta[k].list
		}
	}

	for _, k := range []string{keyLegacyConflicts, keyConflicts} {
		for _, v := range values[k] {
			conflicts.add(strings.Fields(v)...)
		}
	}
	req.Conflicts = conflicts.list
	for _, v := range values[keyReplaces] {
		replaces.add(strings.Fields(v)...)
	}
	req.Replaces = replaces.list

	if g := values[keyGlobal]; len(g) > 0 {
		req.Global = isTruthy(g[len(g)-1])
	}
	if v := values[keyStopOnDisconnect]; len(v) > 0 {
		req.StopOnDisconnect = isTruthy(v[len(v)-1])
	}

	for _, p := range req.Conflicts {
		if _, err := path.Match(p, ""); err != nil {
			return req, warnings, fmt.Errorf("invalid Conflicts pattern %q: %v", p, err)
		}
	}
	for _, p := range req.Replaces {
		if _, err := path.Match(p, ""); err != nil {
			return req, warnings, fmt.Errorf("invalid Replaces pattern %q: %v", p, err)
		}
	}
	return req, warnings, nil
}

// firstNonEmpty returns the first non-empty string of vs, or "".
func firstNonEmpty(vs []string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// uniqueList is a list of non-empty strings without duplicates, in order of
// first addition.
type uniqueList struct {
	list []string
	seen map[string]bool
}

func (u *uniqueList) add(vs ...string) {
	for _, v := range vs {
		if v == "" || u.seen[v] {
			continue
		}
		if u.seen == nil {
			u.seen = make(map[string]bool)
		}
		u.seen[v] = true
		u.list = append(u.list, v)
	}
}

// isTruthy reports whether s is one of fleet's true values: true, yes, 1,
// on, t (case-insensitive). This is fleet's rule for [X-Fleet] Global= and
// StopOnDisconnect=, kept as fleet had it (rule 27), not systemd's boolean
// (ParseBool): "y" is false here, and anything else too, never an error;
// Global=y meaning true would move units that fleet scheduled on one
// machine onto every machine.
func isTruthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

// ValidateOptions is fleet's create-time check of a unit's options: there
// is at least one; they survive Serialize and Parse unchanged (so the hash,
// the stored options and the file the agent writes agree); the [X-Fleet]
// requirements are well-formed, use no forbidden combination, and no
// MachineOf peer matches a Conflicts or Replaces pattern. The first problem
// found is returned, with fleet's message where fleet had one.
func ValidateOptions(name string, opts []fleet.UnitOption) error {
	if len(opts) == 0 {
		return errors.New("unit has no options")
	}
	back, err := Parse(Serialize(opts))
	if err != nil {
		return fmt.Errorf("options do not form a valid unit file: %w", err)
	}
	if want := Grouped(opts); !reflect.DeepEqual(back, want) {
		for i := range want {
			if i >= len(back) || back[i] != want[i] {
				o := want[i]
				return fmt.Errorf("option %s in [%s] with value %s does not survive serialization (leading or trailing white space, a line break, or a name with '=')",
					excerpt(o.Name), o.Section, excerpt(o.Value))
			}
		}
		return errors.New("options do not survive serialization")
	}

	req, _, err := Requirements(name, opts)
	if err != nil {
		return err
	}
	// A template is checked as its instance "1" would be; instances are
	// checked with their own name when they are submitted.
	svcName := name
	if n := ParseName(name); n.Template {
		svcName = n.Prefix + "@1" + n.Suffix
	}
	if _, err := Services(svcName, opts); err != nil {
		return err
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{keyMachineOf, req.MachineOf}, {keyConflicts, req.Conflicts}, {keyReplaces, req.Replaces}} {
		if len(l.list) > MaxRequirementValues {
			return fmt.Errorf("too many %s values (%d); the limit is %d", l.key, len(l.list), MaxRequirementValues)
		}
	}
	for _, peer := range req.MachineOf {
		for _, c := range req.Conflicts {
			if ok, _ := path.Match(c, peer); ok {
				return fmt.Errorf("unresolvable requirements: peer %q matches conflict %q", peer, c)
			}
		}
		for _, r := range req.Replaces {
			if ok, _ := path.Match(r, peer); ok {
				return fmt.Errorf("unresolvable requirements: peer %q matches replace %q", peer, r)
			}
		}
	}

	hasMachineID := req.MachineID != ""
	hasPeers := len(req.MachineOf) > 0
	hasConflicts := len(req.Conflicts) > 0
	hasReplaces := len(req.Replaces) > 0
	switch {
	case hasMachineID && hasPeers:
		return errors.New("MachineID cannot be used with Peers")
	case hasMachineID && hasConflicts:
		return errors.New("MachineID cannot be used with Conflicts")
	case hasMachineID && req.Global:
		return errors.New("MachineID cannot be used with Global")
	case hasMachineID && hasReplaces:
		return errors.New("MachineID cannot be used with Replaces")
	case req.Global && hasPeers:
		return errors.New("Global cannot be used with Peers")
	case req.Global && hasReplaces:
		return errors.New("Global cannot be used with Replaces")
	case hasConflicts && hasReplaces:
		return errors.New("Conflicts cannot be used with Replaces")
	}
	return nil
}
