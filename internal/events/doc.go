// Package events turns changes under fleet's etcd prefix into cluster
// events (fleet.Event): unit submitted, scheduled, rescheduled, started,
// failed, stopped, destroyed; machine joined and lost.
//
// Contract:
//  1. Derive is pure: one etcd change (type, new KV, previous KV) in, zero
//     or more events out. Keys outside the known directories, and changes
//     that mean nothing to a person (a state republished unchanged, a
//     placement index entry), give nothing.
//  2. Stream watches the prefix with previous values from a revision (0 =
//     from now) and sends derived events in revision order. An
//     unscheduled event followed, in the same or the next revision, by a
//     scheduled event of the same unit on another machine is merged into
//     one rescheduled event; unscheduled events are therefore held back
//     for up to HoldBack.
//  3. After a watch failure Stream resumes after the last revision it saw;
//     if that revision was compacted it sends stream.resync and continues
//     from the current revision. The channel is closed when ctx ends.
//  4. Events carry the revision of their change; Time is when fleetd saw
//     it.
package events
