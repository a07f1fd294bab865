// Package keys is fleet's etcd key layout: how names map to keys under the
// cluster's prefix and back. It is pure (no etcd); internal/store writes
// and reads these keys, and readers of raw watch events (events) decode
// them here instead of knowing the layout themselves. See internal/store's
// doc for what each key holds.
package keys

import "strings"

// DefaultPrefix is fleet's historical key prefix.
const DefaultPrefix = "/_coreos.com/fleet/"

// Kind says what a key is.
type Kind int

const (
	Unknown   Kind = iota
	Unit           // units/<unit>
	Machine        // machines/<machine>
	Metadata       // metadata/<machine>/<key>
	Schedule       // schedule/<machine>/<unit>
	Placement      // placements/<unit>/<machine>
	State          // states/<machine>/<unit>
	Reason         // reasons/<unit>
	Leader         // engine/leader/<lease>
	Token          // auth/tokens/<sha256 hex>
	Revision       // revisions/<unit>/<hash>
	Rollout        // rollouts/<unit>
	Check          // checks/<machine>/<unit>
	Job            // jobs/<unit>/<machine>
)

var kindNames = [...]string{"unknown", "unit", "machine", "metadata", "schedule", "placement", "state", "reason", "leader", "token", "revision", "rollout", "check", "job"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Layout maps names to keys under one prefix.
type Layout struct{ prefix string }

// New returns the layout under prefix (DefaultPrefix if empty; a trailing
// "/" is added if missing).
func New(prefix string) Layout {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Layout{prefix: prefix}
}

// Prefix returns the prefix, ending in "/".
func (l Layout) Prefix() string { return l.prefix }

func (l Layout) UnitsDir() string                      { return l.prefix + "units/" }
func (l Layout) Unit(name string) string               { return l.UnitsDir() + name }
func (l Layout) MachinesDir() string                   { return l.prefix + "machines/" }
func (l Layout) Machine(id string) string              { return l.MachinesDir() + id }
func (l Layout) MetadataDir() string                   { return l.prefix + "metadata/" }
func (l Layout) MachineMetadataDir(id string) string   { return l.MetadataDir() + id + "/" }
func (l Layout) Metadata(id, key string) string        { return l.MachineMetadataDir(id) + key }
func (l Layout) ScheduleDir() string                   { return l.prefix + "schedule/" }
func (l Layout) MachineScheduleDir(id string) string   { return l.ScheduleDir() + id + "/" }
func (l Layout) Schedule(machine, unit string) string  { return l.MachineScheduleDir(machine) + unit }
func (l Layout) PlacementsDir() string                 { return l.prefix + "placements/" }
func (l Layout) UnitPlacementsDir(unit string) string  { return l.PlacementsDir() + unit + "/" }
func (l Layout) Placement(unit, machine string) string { return l.UnitPlacementsDir(unit) + machine }
func (l Layout) StatesDir() string                     { return l.prefix + "states/" }
func (l Layout) MachineStatesDir(id string) string     { return l.StatesDir() + id + "/" }
func (l Layout) State(machine, unit string) string     { return l.MachineStatesDir(machine) + unit }
func (l Layout) ReasonsDir() string                    { return l.prefix + "reasons/" }
func (l Layout) Reason(unit string) string             { return l.ReasonsDir() + unit }
func (l Layout) LeaderPrefix() string                  { return l.prefix + "engine/leader" }
func (l Layout) TokensDir() string                     { return l.prefix + "auth/tokens/" }
func (l Layout) Token(hash string) string              { return l.TokensDir() + hash }
func (l Layout) RevisionsDir() string                  { return l.prefix + "revisions/" }
func (l Layout) UnitRevisionsDir(unit string) string   { return l.RevisionsDir() + unit + "/" }
func (l Layout) Revision(unit, hash string) string     { return l.UnitRevisionsDir(unit) + hash }
func (l Layout) RolloutsDir() string                   { return l.prefix + "rollouts/" }
func (l Layout) Rollout(unit string) string            { return l.RolloutsDir() + unit }
func (l Layout) ChecksDir() string                     { return l.prefix + "checks/" }
func (l Layout) Check(machine, unit string) string     { return l.ChecksDir() + machine + "/" + unit }
func (l Layout) JobsDir() string                       { return l.prefix + "jobs/" }
func (l Layout) UnitJobsDir(unit string) string        { return l.JobsDir() + unit + "/" }
func (l Layout) Job(unit, machine string) string       { return l.UnitJobsDir(unit) + machine }

// Key is a decoded key: its kind and the names it holds (those its kind
// has; the others are "").
type Key struct {
	Kind    Kind
	Unit    string
	Machine string
	Name    string // metadata key, leader lease (hex), token hash, revision hash
}

// Parse decodes key; ok is false for a key outside the layout (or a
// malformed one, such as an empty name).
func (l Layout) Parse(key string) (k Key, ok bool) {
	rest, ok := strings.CutPrefix(key, l.prefix)
	if !ok {
		return Key{}, false
	}
	dir, rel, ok := strings.Cut(rest, "/")
	if !ok || rel == "" {
		return Key{}, false
	}
	// two splits rel into exactly two non-empty names.
	two := func() (string, string, bool) {
		a, b, ok := strings.Cut(rel, "/")
		return a, b, ok && a != "" && b != "" && !strings.Contains(b, "/")
	}
	single := !strings.Contains(rel, "/")
	switch dir {
	case "units":
		return Key{Kind: Unit, Unit: rel}, single
	case "machines":
		return Key{Kind: Machine, Machine: rel}, single
	case "reasons":
		return Key{Kind: Reason, Unit: rel}, single
	case "rollouts":
		return Key{Kind: Rollout, Unit: rel}, single
	case "checks":
		m, u, ok := two()
		return Key{Kind: Check, Machine: m, Unit: u}, ok
	case "jobs":
		u, m, ok := two()
		return Key{Kind: Job, Unit: u, Machine: m}, ok
	case "revisions":
		u, hash, ok := two()
		return Key{Kind: Revision, Unit: u, Name: hash}, ok
	case "metadata":
		m, name, ok := two()
		return Key{Kind: Metadata, Machine: m, Name: name}, ok
	case "schedule":
		m, u, ok := two()
		return Key{Kind: Schedule, Machine: m, Unit: u}, ok
	case "states":
		m, u, ok := two()
		return Key{Kind: State, Machine: m, Unit: u}, ok
	case "placements":
		u, m, ok := two()
		return Key{Kind: Placement, Machine: m, Unit: u}, ok
	case "engine":
		lease, ok := strings.CutPrefix(rel, "leader/")
		return Key{Kind: Leader, Name: lease}, ok && lease != "" && !strings.Contains(lease, "/")
	case "auth":
		hash, ok := strings.CutPrefix(rel, "tokens/")
		return Key{Kind: Token, Name: hash}, ok && hash != "" && !strings.Contains(hash, "/")
	}
	return Key{}, false
}
