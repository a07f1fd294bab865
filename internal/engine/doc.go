// Package engine is the cluster scheduler's loop. Every fleetd runs one
// (unless disable_engine is set); only the elected leader schedules.
//
// Contract:
//  1. Campaign for leadership through etcd (store.Campaign); block until
//     elected or ctx ends.
//  2. While leader, keep a store.View of the inputs: units/, machines/,
//     metadata/, rollouts/ and jobs/ are read once and then followed by watches (each event
//     decoded once); schedule/ and reasons/ are updated from the engine's
//     own successful writes. Wake on any change the view applies
//     (coalesced; under load a wake-up waits up to a quarter of the last
//     round, at most 20 ms, for more changes), and on a periodic tick
//     (engine_reconcile_interval), which re-reads everything as a safety
//     net; then reconcile: take the view's snapshot, run the pure
//     schedule.Schedule over it (unit requirements are parsed once per unit
//     hash; every live machine is passed with its metadata, draining ones
//     included: the drain policy of fleetctl drain, metadata draining=true,
//     is schedule's rule 12, not the engine's, which filters no machine),
//     diff the result against the stored schedule and reasons, and
//     write the difference with store.Apply (leader-fenced transactions,
//     pipelined; bursts of changes are batched into one round). A failed
//     write or watch makes the next round re-read everything.
//  3. Losing leadership (lease lost or a fenced write refused) ends the
//     round; the engine resigns what is left of it (its key, its lease) and
//     campaigns again.
//  4. Reconcile is level-triggered and idempotent: running it twice on the
//     same snapshot writes nothing the second time.
//  5. Control-plane outages do not move units (hold.go): when at least
//     half of the machines (at least two, or all of a one- or two-machine
//     cluster) lose their leases within agent_ttl (LeaseTTL) of each other,
//     or a new leader's inherited schedule names such a share of missing
//     machines, those machines are held for agent_ttl from when the engine
//     noticed: their schedule entries stay, nothing new is placed on them,
//     and a held machine that registers again just carries on. After the
//     grace their units move as for any gone machine. A lone lost machine
//     is kept only for a settle time (agent_ttl/20, at most 200 ms), in
//     case others follow it. The decision is the pure function holds; the
//     loop also wakes when a hold or settle time ends. Holds start and end
//     with a Warn log.
//  6. Jobs ([X-Fleet] Job=true): the view also follows jobs/, the records
//     agents write when a Job unit's run ends. A non-global Job with a
//     "succeeded" record for its current hash (on any machine, live or
//     not) is left out of the scheduler's input: it is removed from its
//     machine, gets no reason, and is never placed again, not even when
//     that machine dies. A failed job keeps its placement; if its machine
//     dies it is placed elsewhere as any unit. A global Job is placed by
//     the scheduler as any global unit, and then the machines with a
//     succeeded record for its hash are taken out of its assignment
//     (skipSucceededJobs): it runs once per matching machine. The
//     scheduler package knows nothing of jobs. A new hash (the file
//     replaced) or deleted records (DELETE /jobs) make the job run again.
//  7. Timers: a launched .timer unit's activated unit (its Unit=, by
//     default the timer's name with .service) goes with it: in the
//     scheduler's input it gets desired state at least loaded and the
//     timer added to its MachineOf (timerPlacements). The machine's timerd
//     starts it when the timer elapses.
//  8. Rollouts: a global unit under a rollout runs, per machine, the
//     revision the rollout pinned it to (rollout.Pin); a target moved with
//     surge runs where rollout.Placement says (rolloutPlacements). The
//     leader also runs the rollout driver (Config.WhileLeading).
package engine
