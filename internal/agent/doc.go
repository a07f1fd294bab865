// Package agent is the per-machine reconcile loop: it makes the runner do
// what the engine scheduled on this machine, and publishes what the runner
// reports.
//
// Contract:
//  1. Wake on changes under schedule/<machine>/ (one watch), on runner state
//     changes, and on a periodic tick; then reconcile level-triggered.
//  2. Reconcile reads this machine's schedule and compares it with what the
//     agent has handed the runner: units no longer scheduled are unloaded;
//     new units, or units whose hash changed, are (re)loaded from units/<name>;
//     desired launched ⇒ Start, desired loaded ⇒ Stop. Order: unload, load,
//     stop, start.
//  3. Unit states are published under states/<machine>/<unit> on the
//     machine's lease; only changed states are written, all of them again when
//     the lease changes; states of unloaded units are deleted.
//  4. A failed step is logged and retried on the next round; it never stops
//     the loop.
package agent
