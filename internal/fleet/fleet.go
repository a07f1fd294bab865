package fleet

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// JobState is fleet's cluster-level state of a unit: desired (what the user
// asked for) or current (what the cluster reports).
type JobState string

// The three job states, in order.
const (
	JobStateInactive JobState = "inactive"
	JobStateLoaded   JobState = "loaded"
	JobStateLaunched JobState = "launched"
)

// ParseJobState validates s as a job state.
func ParseJobState(s string) (JobState, error) {
	switch JobState(s) {
	case JobStateInactive, JobStateLoaded, JobStateLaunched:
		return JobState(s), nil
	}
	return "", fmt.Errorf("invalid job state %q: expect inactive, loaded or launched", s)
}

// UnitOption is one Key=Value line of a unit file, in its section.
type UnitOption struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

// Unit is a unit as stored in the registry.
type Unit struct {
	Name         string       `json:"name"`
	Options      []UnitOption `json:"options"`
	Hash         string       `json:"hash"` // hex SHA1 of the serialized options (unitfile.Hash)
	DesiredState JobState     `json:"desiredState"`
}

// IsTemplate reports whether the name is a template (foo@.service).
func IsTemplate(name string) bool {
	at := strings.Index(name, "@")
	dot := strings.LastIndex(name, ".")
	return at >= 0 && dot == at+1
}

// Machine is a live member of the cluster.
type Machine struct {
	ID       string            `json:"id"`
	PublicIP string            `json:"publicIP,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Version  string            `json:"version,omitempty"`
	// APIURL is where this machine's fleetd API answers (used to proxy
	// status and journal requests to the machine that runs a unit).
	APIURL        string `json:"apiURL,omitempty"`
	DisableEngine bool   `json:"disableEngine,omitempty"`
	// Capacity is what the machine offers to units ([X-Fleet] Memory= and
	// CPU= reservations). A zero dimension is unknown: no limit there, so
	// a machine that advertises nothing takes units of any size.
	Capacity Resources `json:"capacity,omitzero"`
}

// Resources are amounts of CPU and memory: a machine's capacity or a
// unit's reservation. Zero means none (a reservation) or unknown, no limit
// (a capacity).
type Resources struct {
	CPUMilli    int64 `json:"cpuMilli,omitempty"`    // thousandths of a CPU
	MemoryBytes int64 `json:"memoryBytes,omitempty"` // bytes
}

// MetadataCond is one MachineMetadata condition with an operator other
// than "=": Op is one of != >= <= > < (see unitfile.Requirements).
type MetadataCond struct {
	Key   string `json:"key"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// ShortID is the 8-character legend fleet prints.
func (m Machine) ShortID() string { return ShortMachineID(m.ID) }

// ShortMachineID returns the first 8 characters of id.
func ShortMachineID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// MetadataString renders metadata as k=v,k=v sorted by key, or "-".
func (m Machine) MetadataString() string {
	if len(m.Metadata) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m.Metadata[k]
	}
	return strings.Join(parts, ",")
}

// UnitState is the state of a unit on one machine, as its agent reports it,
// in systemd's words.
type UnitState struct {
	Name        string    `json:"name"`
	MachineID   string    `json:"machineID"`
	Hash        string    `json:"hash"`
	LoadState   string    `json:"loadState"`   // loaded, not-found, error
	ActiveState string    `json:"activeState"` // activating, active, deactivating, inactive, failed
	SubState    string    `json:"subState"`    // start-pre, running, exited, stop-sigterm, dead, failed, auto-restart, ...
	Since       time.Time `json:"since,omitzero"`
	// JobState is what the agent has done with the unit: loaded (known to
	// the runner, not started) or launched (start issued). Together with the
	// placement it gives the unit's current job state.
	JobState JobState `json:"jobState,omitempty"`
	// Result is the runner's result of the unit's last run (systemd's:
	// success, exit-code, signal, timeout, core-dump, oom-kill,
	// start-limit-hit); "" when it never ran.
	Result string `json:"result,omitempty"`
	// Exit is how the main process of the last run ended
	// ("code=exited, status=3/NOTIMPLEMENTED"); "" before it ends.
	Exit string `json:"exit,omitempty"`
}

// Requirements are a unit's [X-Fleet] constraints, after specifier
// expansion (see unitfile.Requirements).
type Requirements struct {
	// MachineID restricts the unit to one machine (full or 8-char short ID).
	MachineID string `json:"machineID,omitempty"`
	// MachineOf lists units that must be scheduled on the same machine.
	// Entries may be glob patterns (path.Match): the unit must then share
	// a machine with at least one other unit matching the pattern.
	MachineOf []string `json:"machineOf,omitempty"`
	// Metadata maps a key to its accepted values: same key OR, keys AND.
	Metadata map[string][]string `json:"metadata,omitempty"`
	// MetadataOps are the MachineMetadata conditions with another
	// operator (key!=v, key>=N, ...); each must hold, and with Metadata.
	MetadataOps []MetadataCond `json:"metadataOps,omitempty"`
	// Resources is what the unit reserves on its machine ([X-Fleet]
	// Memory= and CPU=, defaulting to [Service] MemoryMax= and CPUQuota=).
	Resources Resources `json:"resources,omitzero"`
	// Conflicts are glob patterns (path.Match) of units that may not share a machine.
	Conflicts []string `json:"conflicts,omitempty"`
	// Replaces are glob patterns of units this one displaces from its machine.
	Replaces []string `json:"replaces,omitempty"`
	// Global units run on every machine that matches Metadata and Conflicts.
	Global bool `json:"global,omitempty"`
	// StopOnDisconnect asks the agent to stop the unit when its machine
	// loses contact with etcd for agent_ttl (fleet's old behaviour). By
	// default a unit keeps running while etcd is unreachable. It does not
	// affect scheduling.
	StopOnDisconnect bool `json:"stopOnDisconnect,omitempty"`
	// Job marks a run-to-completion unit ([X-Fleet] Job=true; it must be
	// Type=oneshot): once its run on a machine ends succeeded, it is never
	// run again for the same hash (see the store's jobs/ records).
	Job bool `json:"job,omitempty"`
}

// Reason says why a unit could not be placed.
type Reason struct {
	Unit string `json:"unit"`
	// Summary is one line a user can act on, e.g.
	// `no machine can run web@4.service: conflicts with web@1.service on 1234abcd`.
	Summary string `json:"summary"`
	// PerMachine maps machine ID to why that machine was rejected.
	PerMachine map[string]string `json:"perMachine,omitempty"`
}
