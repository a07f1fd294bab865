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
//     clash (both ways) with the global units already placed there, and
//     where it fits beside them (rule 13); global units count toward load. Its
//     MachineID, MachineOf and Replaces are ignored. It gets a reason only
//     when no machine accepts it. Non-global units must respect global ones
//     (Conflicts both ways; a Replaces matching a global unit rejects the
//     machine, since a global unit cannot move).
//
//  5. Filters. A machine is feasible for a non-global unit when, in order:
//     (a) MachineID equals the machine ID, or has exactly 8 characters and
//     is the 8-character prefix of it; (b) every MachineOf peer is placed on
//     the machine (a peer that is missing, inactive or unplaced makes the
//     unit unplaceable; a MachineOf cycle makes every member unplaceable;
//     patterns: rule 16); (c) for every MachineMetadata key, the machine
//     has that key with one of the listed values (same key OR, keys AND;
//     exact equality; a key without values is ignored), and every operator
//     condition holds (rule 15); (d) no unit on the machine has a Conflicts
//     pattern (path.Match) matching this unit's name, and no pattern of this
//     unit matches a unit there; a unit never conflicts with itself;
//     (e) no non-global unit on the machine has a Replaces pattern matching
//     this unit; (f) the machine is not draining (rule 12); (g) the unit's
//     reservation fits in what the machine has free (rule 13).
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
//     to the smaller machine ID. This is the spread strategy, the default;
//     binpack ranks otherwise (rule 14).
//
//  8. Sticky conflicts. Two units sticky on one machine that cannot share it
//     (a new Conflicts pattern, say): the first in processing order stays,
//     the other is placed elsewhere.
//
//  9. Maximality and stability. If a displacement happened, the unplaced
//     units are retried until nothing changes; so in the result no unplaced
//     unit has a machine that passes (a)-(g) given the final placements.
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
//     per placement. Reservations (rule 13) are per-machine sums checked
//     in O(1); binpack (rule 14) keeps each class's machines in a sorted
//     slice and starts its walk at the first machine with enough free
//     memory, so full machines cost nothing either. MachineOf patterns
//     (rule 16) use the Conflicts counters.
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
//  13. Resources. A machine advertises Capacity (fleet.Resources: milli-CPUs
//     and memory bytes; a zero dimension is unknown, no limit there, so a
//     machine advertising nothing takes units of any size). A unit reserves
//     Requirements.Resources (zero: nothing; negative values count as
//     zero). Filter (g): a non-global unit fits on a machine when, in
//     every dimension the machine advertises, the reservations of the units
//     placed there (global units included) plus its own stay within the
//     capacity; so no machine is ever overcommitted in the result. Global
//     units are placed first (rule 2) and fit against the global units
//     already there; a machine without room is skipped for them, and named
//     in their reason. Sticky units (rule 3) stay while they fit given the
//     units kept before them: nothing is evicted because capacity shrank
//     or a reservation grew unless the machine can no longer hold it; then
//     the units first in processing order keep their place and the rest
//     move (as in rule 8), and a new sized global unit, placed first, can
//     push non-global units off a full machine. A reservation larger than
//     every machine's capacity leaves the unit unplaced with that reason.
//     With Replaces, the reservations of the units displaced are freed
//     before the fit is checked. Reasons name the shortfall: PerMachine
//     "needs memory 400M; 11111111 has 200M free" (and "CPU 1.5" / "0.5
//     CPU" for CPU); summary "not enough memory (needs 400M, most free
//     200M on 11111111)", or "memory 4G is more than any machine has
//     (largest 1G on 11111111)"; sizes in K M G T (base 1024), CPUs as
//     decimals. Resources are the last filter but the drain.
//
//  14. Strategy. Snapshot.Strategy "spread" (or empty, or anything
//     unknown) ranks by rule 7. "binpack" ranks feasible machines by
//     least free memory (after placement: the same order, as every machine
//     loses the unit's reservation), then least free CPU, then machine ID;
//     a dimension a machine does not advertise counts as unlimited free.
//     Units thus fill machines and leave others empty for large units.
//     Binpack never moves placed units (rules 3 and 9 hold unchanged: no
//     compaction); between machines not advertising capacity it degrades
//     to ID order.
//
//  15. Metadata operators. Requirements.MetadataOps are conditions
//     key!=v, key>=v, key<=v, key>v, key<v, each of which must hold (AND,
//     also with Metadata). key!=v holds on a machine without the key. The
//     ordering operators need the key; two decimal numbers ("8", "-1",
//     "0.5") compare exactly as numbers, otherwise two versions ("1.2.10",
//     "7": digit runs and dots) compare segment by segment numerically
//     (missing segments 0); anything else (cores=many) does not match.
//     "1.2" and "1.10" are numbers: 1.2 > 1.10 (write 1.2.0 to compare
//     versions). Conditions are sorted and deduplicated, so their order
//     does not matter; units with the same Metadata and conditions share a
//     class (rule 11), named like "disk=ssd,cores>=8" in reasons; the
//     first failing condition is explained per machine: "metadata cores>100
//     not met: machine has cores=many (not comparable with 100)".
//
//  16. MachineOf patterns. A MachineOf entry with *, ? or [ is a
//     path.Match pattern: the unit must be on a machine where at least one
//     other active unit matching it is placed (global units included; the
//     unit itself never counts). Entries without those characters are
//     exact names (rule 5b). For rule 2 the unit follows every non-global
//     unit the pattern matches: a pattern matching a unit that follows
//     back, by name or pattern, is a MachineOf cycle, and every member is
//     unplaceable (rule 5b), even when the pattern also matches units
//     outside the cycle. A pattern matching no placed unit makes the unit
//     unplaceable: "no unit matching queue@*.service (MachineOf) is
//     scheduled". When Replaces displaces units (rule 6), a follower there
//     goes with them only if no other match for its pattern stays.
//
// Diff turns two assignments into the placements to add and remove.
package schedule
