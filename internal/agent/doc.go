// Package agent is the per-machine reconcile loop: it makes the runner do
// what the engine scheduled on this machine, and publishes what the runner
// reports.
//
// Contract:
//  1. Wake on changes under schedule/<machine>/ (one watch, whose events
//     keep an in-memory copy of the machine's schedule up to date:
//     store.ScheduleFollower), on runner state changes, and on a periodic
//     tick; then reconcile level-triggered. Every 12th tick, and after a
//     watch failure, the schedule is read again from etcd.
//  2. Reconcile takes this machine's schedule and compares it with what the
//     agent has handed the runner: units no longer scheduled are unloaded;
//     new units, or units whose hash changed, are (re)loaded from
//     units/<name> (read in batches); desired launched ⇒ Start, desired
//     loaded ⇒ Stop. Order: unload, load, stop, start. A round has three
//     steps:
//     (a) inputs: the schedule (the follower's copy, or etcd), a copy of
//     the agent's record of what the runner holds, the files of the units
//     to (re)load, the lease and whether LeaseLost was called;
//     (b) plan (plan.go): a pure function of those inputs, no I/O, no
//     clock, no lock, to an ordered list of actions (mark-stopped,
//     deregister, unload, load, missing, stop, start) by numbered rules,
//     each with a row in plan_test.go;
//     (c) execute: the actions run in order against the runner and
//     BeforeStop; each outcome is recorded in the agent's record as it
//     happens; once an action on a unit fails, that unit's later actions
//     wait for the next round.
//  3. Unit states are published under states/<machine>/<unit> on the
//     machine's lease; only changed states are written, all of them again when
//     the lease changes; states of unloaded units are deleted. A unit the
//     agent started less than startSettle (15 ms) ago that is still
//     inactive or activating is published once it is up or once that time
//     has passed, so a fast start writes one state, not three.
//  4. A failed step is logged and retried on the next round; it never stops
//     the loop.
//  5. On start, units the runner already holds (adopted from a previous
//     fleetd) count as loaded (launched if up), so the first reconcile
//     leaves those still scheduled here with the same hash alone.
//  6. LeaseLost (the machine's lease is gone or about to expire) stops only
//     the units with [X-Fleet] StopOnDisconnect=true, at once; the others
//     keep running (losing etcd is not proof that they moved). While Lease()
//     is 0 nothing is started; once a lease is back the schedule is re-read
//     afresh: copies no longer scheduled here are stopped first, and only
//     what it says starts. Units adopted from an earlier fleetd whose
//     options were never loaded count as not fenced.
//  7. Lock discipline. The agent's fields (its record of loaded units,
//     what it published, the lease-loss flag) are guarded by one mutex,
//     held only to copy or update them: never across etcd, a Runner call
//     or BeforeStop. So Units, Publish's bookkeeping and LeaseLost never
//     wait for a round, however long its I/O takes. Rounds are serialized
//     by a second mutex that only reconcile takes. LeaseLost counts its
//     calls; a round in flight starts nothing once the count moved, and
//     stops again a StopOnDisconnect unit whose start raced with it.
//  8. Jobs ([X-Fleet] Job=true; jobs.go). When a Job unit the agent
//     started (or adopted running) ends its run, the agent records it
//     under jobs/<unit>/<machine>, without a lease: succeeded (exited 0:
//     inactive/dead, or active/exited with RemainAfterExit) or failed
//     (failed, after the runner's own Restart= and StartLimit*), with the
//     runner's Result and the hash; once per run. Published states carry
//     the runner's Result. A round reads this machine's records of its
//     Job units (changes under jobs/ wake a round) for plan's rules 11
//     (never start a job that succeeded here with this hash, also after a
//     restart) and 12 (a recorded job whose record was deleted runs
//     again). Adopted units' job flag is read from their files.
package agent
