// Package rollout is the pure core of rolling updates: a rollout record
// (Rollout), what the cluster shows of each target (Observation), and Step,
// which decides the next record, the writes to make and the events to
// emit. It has no I/O and no clock: time comes in as an argument. The
// engine leader's driver (internal/rolloutd) reads the record and the
// observations, calls Step, and writes the result in one leader-fenced
// transaction; the API creates records (New, Validate) and flips Phase
// (Pause, Resume, Abort).
//
// Contract of Step(r, obs, now) (next, actions, events):
//
//  1. Step never modifies r (it copies Targets). A terminal r (Phase
//     Terminal()) is returned unchanged with no actions and no events.
//  2. Health. A target moving to hash H (updating: ToHash; reverting:
//     FromHash) is healthy when its observation is Present, reports Hash
//     H, healthyState(ActiveState, SubState) and ChecksPassing. Its
//     HealthySince is set to now when it is first seen healthy and reset to
//     zero when it is not. Once healthy for MinHealthyTime (now -
//     HealthySince >= MinHealthyTime) an updating target becomes updated
//     and a reverting one reverted.
//  3. Failure. A target moving to H whose observation reports Hash H with
//     ActiveState "failed", or that is not healthy (for MinHealthyTime)
//     by Started + HealthyDeadline, fails: updating -> failed with Message
//     naming the unit, the machine state ("failed (exit-code)", "activating
//     start-pre", "not running"), the observation's Detail and, for a
//     deadline, how long it waited. The rollout then fails: with AutoRevert
//     the phase becomes reverting (Reason = the failure), else failed
//     (Reason = the failure); event rollout-failed either way.
//  4. Batches. In phase running, when no target is updating, the next
//     min(MaxParallel, pending) pending targets in Targets order become
//     updating (Started = now, HealthySince zero) with one SetHash action
//     each (Hash = ToHash). When a step turns the last updating target of a
//     batch into updated, event batch-healthy ("batch 2/3 healthy: web@3,
//     web@4") and Batches++. When no target is pending or updating, phase
//     done, event rollout-done.
//     Surge (rule 4a): with MaxSurge > 0 (not for a global unit), a target that
//     starts moving while fewer than MaxSurge targets surge, and whose
//     observation names where it runs (Machine) and another machine for a
//     second copy (SurgeTo), gets Machine and Surge set: the new copy runs
//     on Surge while the old one keeps serving on Machine (Placement; the
//     engine applies it), and its health is judged on Surge
//     (WatchMachine). When it becomes updated, Machine is cleared (the old
//     copy goes); when it fails, Surge is cleared (the new copy goes, the
//     old one stays). Moved back, a target whose old copy still runs goes
//     back to it alone; one whose old copy is gone is replaced in place on
//     Surge. Other targets are replaced in place (stop, then start).
//  5. Paused: targets in flight are still observed (rules 2, 3) but no new
//     batch starts. Pause/Resume flip running <-> paused (errors in other
//     phases); Abort makes any non-terminal phase aborted with Reason.
//  6. Reverting: on entering it, one SetFile action (Hash FromHash) puts
//     the rolled unit's own file back. Targets that are updating, updated
//     or failed are moved back in batches of MaxParallel (status reverting,
//     SetHash FromHash, Started = now) and gated like rule 2; a reverting
//     target that fails by rule 3 gets status revert-failed and makes the
//     phase failed with Reason "revert failed: ...". When none is left to revert or reverting:
//     phase reverted, event rollout-reverted. Pending targets never moved
//     and are left alone.
//  7. Pin(r, machine) gives, for a global rollout, the hash machine must
//     run: pending, reverting, reverted, revert-failed -> FromHash;
//     updating, updated, failed -> ToHash; ok false if machine is not a
//     target.
//  8. Progress(r) is one line for people, e.g.
//     "2/5 updated, 1 in progress, waiting for health" or
//     "failed: web@3.service: failed (exit-code) ..." or "done: 5/5 updated".
package rollout
