package fleet

import "time"

// Event types: what happened in the cluster (GET /fleet/v1/events,
// fleetctl events, the dashboard's feed).
const (
	EventUnitSubmitted   = "unit.submitted"   // units/<name> created
	EventUnitReplaced    = "unit.replaced"    // units/<name> options changed
	EventUnitDesired     = "unit.desired"     // desired state changed
	EventUnitDestroyed   = "unit.destroyed"   // units/<name> deleted
	EventUnitScheduled   = "unit.scheduled"   // placed on a machine
	EventUnitUnscheduled = "unit.unscheduled" // taken off a machine
	EventUnitRescheduled = "unit.rescheduled" // moved from one machine to another
	EventUnitUnplaced    = "unit.unplaced"    // the engine cannot place it (Message: why)
	EventUnitStarted     = "unit.started"     // active state became active
	EventUnitStopped     = "unit.stopped"     // active state became inactive
	EventUnitFailed      = "unit.failed"      // active state became failed
	EventMachineJoined   = "machine.joined"   // machines/<id> created
	EventMachineLost     = "machine.lost"     // machines/<id> gone (lease expired or revoked)
	EventStreamResync    = "stream.resync"    // events may have been missed (compaction): re-read

	// Rollouts (fleetctl rollout), derived from rollouts/<unit>; Unit is
	// the rolled unit or template, State the rollout's phase.
	EventRolloutStarted  = "rollout-started"  // a rollout record was created
	EventRolloutBatch    = "batch-healthy"    // a batch became healthy on the new revision
	EventRolloutFailed   = "rollout-failed"   // a target failed its gate (Message: why); reverting follows with auto-revert
	EventRolloutReverted = "rollout-reverted" // every moved target is back on the previous revision
	EventRolloutDone     = "rollout-done"     // every target is healthy on the new revision
	EventRolloutAborted  = "rollout-aborted"  // stopped by fleetctl rollout abort
)

// Event is one cluster event, derived from a change in etcd.
type Event struct {
	// Rev is the etcd revision of the change (use it as ?since=Rev+1 to
	// resume).
	Rev int64 `json:"rev"`
	// Time is when fleetd saw the change (etcd keeps no time).
	Time time.Time `json:"time"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Unit is the unit's name (unit.* events).
	Unit string `json:"unit,omitempty"`
	// Machine is the machine's full ID (the new machine when rescheduled).
	Machine string `json:"machine,omitempty"`
	// From is the previous machine of a rescheduled unit.
	From string `json:"from,omitempty"`
	// State is the new desired state (unit.submitted, unit.desired) or the
	// new active/sub state (unit.started, unit.stopped, unit.failed).
	State string `json:"state,omitempty"`
	// IP is the machine's public IP (machine.* events).
	IP string `json:"ip,omitempty"`
	// Message is a one-line human description.
	Message string `json:"message,omitempty"`
}
