package rollout

import "time"

// Phase is where a rollout is.
type Phase string

const (
	// PhaseRunning: batches are being moved to the new revision.
	PhaseRunning Phase = "running"
	// PhasePaused: no new batch starts; a batch in flight is still watched.
	PhasePaused Phase = "paused"
	// PhaseReverting: a failed rollout with AutoRevert moves the targets
	// it touched back to the previous revision, under the same gates.
	// (To go back after an abort, use "rollout undo".)
	PhaseReverting Phase = "reverting"
	// Terminal phases.
	PhaseDone     Phase = "done"
	PhaseFailed   Phase = "failed"
	PhaseReverted Phase = "reverted"
	PhaseAborted  Phase = "aborted"
)

// Terminal reports whether nothing more happens in phase p.
func (p Phase) Terminal() bool {
	return p == PhaseDone || p == PhaseFailed || p == PhaseReverted || p == PhaseAborted
}

// TargetStatus is where one target (an instance, a unit, or one machine of
// a global unit) is.
type TargetStatus string

const (
	TargetPending   TargetStatus = "pending"   // still on the previous revision, not started
	TargetUpdating  TargetStatus = "updating"  // moved to the new revision, waiting for health
	TargetUpdated   TargetStatus = "updated"   // healthy on the new revision
	TargetFailed    TargetStatus = "failed"    // not healthy on the new revision by the deadline, or failed
	TargetReverting TargetStatus = "reverting" // moved back to the previous revision, waiting for health
	TargetReverted  TargetStatus = "reverted"  // healthy on the previous revision again
	// TargetRevertFailed: moved back to the previous revision, which did
	// not become healthy either (the rollout then fails).
	TargetRevertFailed TargetStatus = "revert-failed"
)

// Target is one thing a rollout moves: for a template or a plain unit, a
// unit name (an instance, or the unit itself); for a global unit, a
// machine ID.
type Target struct {
	Name   string       `json:"name"`
	Status TargetStatus `json:"status"`
	// Started is when the target was moved (to the new revision, or back
	// when reverting); zero while pending.
	Started time.Time `json:"started,omitzero"`
	// HealthySince is when the target was first seen healthy on the
	// revision it is moving to, in an unbroken run of healthy
	// observations; zero if it is not healthy now.
	HealthySince time.Time `json:"healthySince,omitzero"`
	// Message says why a target failed (its state, its check output).
	Message string `json:"message,omitempty"`
	// Machine and Surge place a target moved with surge (Spec.MaxSurge):
	// Machine is where its old copy runs until the new one is healthy
	// ("" once it is gone), Surge where the new copy runs. Both empty for
	// a target replaced in place (see Placement).
	Machine string `json:"machine,omitempty"`
	Surge   string `json:"surge,omitempty"`
}

// Spec is what the user asked for.
type Spec struct {
	// Unit is the unit or template whose file changes ("web@.service",
	// "db.service", "agent.service" for a global unit).
	Unit string `json:"unit"`
	// Global says the targets are machines of a global unit.
	Global bool `json:"global,omitempty"`
	// FromHash/FromRevision is what ran before; ToHash/ToRevision is what
	// the rollout moves to. Revisions are numbered per unit (store's
	// revisions/ keys); the content of a hash is found there.
	FromHash     string `json:"fromHash"`
	FromRevision int    `json:"fromRevision"`
	ToHash       string `json:"toHash"`
	ToRevision   int    `json:"toRevision"`
	// Undo marks a rollout started by "rollout undo".
	Undo bool `json:"undo,omitempty"`
	// MaxParallel is the batch size (>= 1).
	MaxParallel int `json:"maxParallel"`
	// MaxSurge is how many targets of a template or plain unit may run a
	// second copy at once: the new version starts on another machine
	// (Observation.SurgeTo) before the old one stops. Targets without such
	// a machine, and global units, are replaced in place.
	MaxSurge int `json:"maxSurge,omitempty"`
	// MinHealthyTime is how long a target must stay healthy to count.
	MinHealthyTime time.Duration `json:"minHealthyTime"`
	// HealthyDeadline is how long a target may take to become healthy
	// (counted from when it was moved) before the rollout fails.
	HealthyDeadline time.Duration `json:"healthyDeadline"`
	// AutoRevert moves the touched targets back when the rollout fails.
	AutoRevert bool `json:"autoRevert,omitempty"`
	// User is who started it (the API's caller name), for history.
	User string `json:"user,omitempty"`
}

// Rollout is the stored record: P rollouts/<unit>. The engine leader
// drives it (Step), the API creates it and flips Phase between running
// and paused or to aborted.
type Rollout struct {
	Spec
	Phase   Phase    `json:"phase"`
	Targets []Target `json:"targets"`
	// Batches counts the batches that became healthy.
	Batches int `json:"batches"`
	// Reason says why the rollout failed or was aborted, or what it is
	// waiting for.
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Observation is what the cluster shows of one target now.
type Observation struct {
	// Present says the unit has a state on some machine (for a global
	// unit: on the target machine).
	Present bool
	// Hash is the unit hash that machine reports running.
	Hash string
	// ActiveState and SubState are systemd's words, as reported.
	ActiveState, SubState string
	// ChecksPassing says every [X-Service] endpoint of the unit is
	// registered (its health checks pass); true for a unit without
	// [X-Service] sections.
	ChecksPassing bool
	// Detail is extra text for a failure message (the check's last error,
	// the unit's result), optional.
	Detail string
	// Machine is where a pending target runs now, and SurgeTo where a
	// second copy of it could run (schedule.SurgeMachines); both are only
	// needed for a pending target of a rollout with MaxSurge.
	Machine, SurgeTo string
}

// ActionKind is what the driver must write.
type ActionKind string

const (
	// SetHash: make target Target run Hash. For a template or a plain
	// unit, rewrite units/<Target> with that revision's content (keeping
	// its desired state). For a global unit, the rollout record itself
	// pins the machine (see Pin), so the action needs no extra write.
	SetHash ActionKind = "set-hash"
	// SetFile: rewrite the rolled unit's or template's own file (Spec.Unit)
	// to Hash's content: at the start of a revert, back to FromHash.
	SetFile ActionKind = "set-file"
)

// Action is one write the driver makes in the same transaction as the
// rollout record.
type Action struct {
	Kind   ActionKind
	Target string // unit name for SetHash of a non-global rollout, machine ID for global; Spec.Unit for SetFile
	Hash   string
}

// Event is a rollout event for the events stream (fleet.Event* rollout
// types).
type Event struct {
	Type    string
	Message string
}

// The rollout event types (fleet.Event.Type).
const (
	EventStarted  = "rollout-started"
	EventBatch    = "batch-healthy"
	EventFailed   = "rollout-failed"
	EventReverted = "rollout-reverted"
	EventDone     = "rollout-done"
)

// healthyState reports whether systemd's state counts as up for a
// rollout: active/running for a service (active/exited for a oneshot with
// RemainAfterExit).
func healthyState(active, sub string) bool {
	return active == "active" && (sub == "running" || sub == "exited" || sub == "listening" || sub == "waiting" || sub == "")
}
