// Package schedule is fleet's scheduler: a pure function from a snapshot of
// the cluster (live machines with their metadata, draining ones included,
// units with their [X-Fleet] requirements, current placements) to the
// desired placement of every unit, plus a reason for every unit it cannot
// place. It imports only the standard library and internal/fleet, reads no
// clock and draws no random numbers: the same snapshot, in any input order,
// gives the same Result. Every placement policy lives here, the drain of
// machines included (rule 12); callers filter nothing.
//
// The contract, as numbered rules (tests cite them by number):
//
//  1. Inactive. A unit whose desired state is inactive is never placed and
//     gets no reason; leaving it out of Assign removes it from its machine.
//     Template names (foo@.service) and empty names are ignored. Machines
//     with an empty ID are ignored; duplicate machine IDs or unit names keep
//     one entry, chosen by content, not by input order.
//
//  2. Order. Units are processed in a fixed order: global units by name
//     (rule 4); then the non-global units sorted by (depth in the MachineOf
//     graph, name), so MachineOf targets come before their followers, in
//     two passes: the sticky pass, then the placement pass.
//
//  3. Sticky. In the sticky pass a unit currently scheduled on a live
//     machine stays there if it is feasible there given the placements made
//     so far (the first such machine by ID if Current lists several); a
//     draining machine is never feasible (rule 12).
//     Current entries naming dead machines or unknown units are ignored.
//     Units not kept (new ones, ones whose machine is gone, ones no longer
//     feasible where they are) go through the placement pass.
//
//  4. Global. A global unit is placed on every live machine that is not
//     draining (rule 12), matches its MachineMetadata and has no Conflicts
//     clash (both ways) with the global units already placed there; global units count toward load. Its
//     MachineID, MachineOf and Replaces are ignored. It gets a reason only
//     when no machine accepts it. Non-global units must respect global ones
//     (Conflicts both ways; a Replaces matching a global unit rejects the
//     machine, since a global unit cannot move).
//
//  5. Filters. A machine is feasible for a non-global unit when, in order:
//     (a) MachineID equals the machine ID, or has exactly 8 characters and
//     is the 8-character prefix of it; (b) every MachineOf peer is placed on
//     the machine (a peer that is missing, inactive or unplaced makes the
//     unit unplaceable; a MachineOf cycle makes every member unplaceable);
//     (c) for every MachineMetadata key, the machine has that key with one
//     of the listed values (same key OR, keys AND; exact equality; a key
//     without values is ignored); (d) no unit on the machine has a Conflicts
//     pattern (path.Match) matching this unit's name, and no pattern of this
//     unit matches a unit there; a unit never conflicts with itself;
//     (e) no non-global unit on the machine has a Replaces pattern matching
//     this unit; (f) the machine is not draining (rule 12).
//
//  6. Replaces. If this unit's Replaces matches non-global units V on a
//     machine, the machine is feasible when (a)-(f) hold without V and V's
//     followers there; choosing it displaces them. A displaced unit (and
//     its followers) is re-placed on its best feasible machine, or left
//     unplaced with a reason naming the replacer (fleet moved it with no
//     constraint check). Replaces is not symmetric: a unit never joins a
//     machine holding a unit that replaces it, so with circular Replaces
//     the first placed wins. A unit may not displace one in the same
//     strongly connected component of the precedence graph (edges: MachineOf
//     target -> follower, replacer -> replaced); this bounds the cascade and
//     keeps results fixpoints. In the sticky pass displaced units wait for
//     the placement pass. Replaces does not make a machine preferred:
//     ranking decides.
//
//  7. Ranking. Among feasible machines the least loaded wins (load = number
//     of units placed on it in this result, global units included); ties go
//     to the smaller machine ID.
//
//  8. Sticky conflicts. Two units sticky on one machine that cannot share it
//     (a new Conflicts pattern, say): the first in processing order stays,
//     the other is placed elsewhere.
//
//  9. Maximality and stability. If a displacement happened, the unplaced
//     units are retried until nothing changes; so in the result no unplaced
//     unit has a machine that passes (a)-(f) given the final placements.
//     Scheduling again with Current set to a result returns that result. Greedy is
//     not optimal in general (a unit placed first can block several others);
//     see TestGreedyBound for the bound that holds and the cases where it is
//     exact.
//
//  10. Reasons. Every non-inactive unit left without a machine has a Reason:
//     Summary is one line naming the constraint and the units and machines
//     involved, e.g. "no machine can run web@4.service: conflicts with
//     web@1.service on 1a2b3c4d, web@2.service on 5e6f7a8b",
//     "no machine has metadata region=us-west (MachineMetadata)",
//     "MachineID=abc matches no live machine", "peer db.service (MachineOf)
//     is not scheduled", "no machines in the cluster", "no machine can run
//     db.service: 1a2b3c4d is draining". Summaries list the machines that
//     got furthest through the filters, at most five per kind. PerMachine
//     maps each live machine ID (draining ones included) to why it rejects
//     the unit.
//
//  11. Cost. Roughly linear in machines x units: conflicts are checked with
//     per-(machine, pattern) counters, least-loaded picks walk a heap per
//     distinct MachineMetadata requirement, only Replaces takes a slow
//     path, and units with identical requirements (template instances)
//     share failed searches and reason texts. The total number of PerMachine entries is bounded by
//     Snapshot.MaxReasonEntries (DefaultMaxReasonEntries): past it, reasons
//     carry only a Summary. A reason's PerMachine is either complete or nil.
//     Draining machines are in no least-loaded heap, so they cost nothing
//     per placement.
//
//  12. Drain. A machine whose metadata has draining=true
//     (fleet.DrainMetadataKey, set by fleetctl drain) is live but takes no
//     unit: filter (f) rejects it for every non-global unit, global units
//     skip it, and the sticky pass does not keep units there, so every unit
//     on it is placed as if the machine were gone: it moves to the best
//     other feasible machine, its MachineOf followers with it, or, when no
//     other machine can take it (one pinned there by MachineID, say), is
//     left unplaced. A draining machine thus never appears in Assign, and
//     the placements are exactly those of the snapshot without it. Undrain
//     (the key removed) makes it an ordinary machine again: nothing moves
//     back (rule 3), new and re-placed units may go there (rule 7). In
//     reasons, a draining machine's PerMachine entry is always "machine is
//     draining" (ReasonDraining); in summaries the drain is the last filter:
//     a draining machine that passes every other one is named, as in "no
//     machine can run a.service: 1a2b3c4d is draining" (also for a unit
//     pinned to it by MachineID, or a global unit no other machine accepts),
//     and the summary "no machine has metadata ..." counts draining
//     machines too.
//
// Diff turns two assignments into the placements to add and remove.
package schedule
