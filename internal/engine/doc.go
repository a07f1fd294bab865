// Package engine is the cluster scheduler's loop. Every fleetd runs one
// (unless disable_engine is set); only the elected leader schedules.
//
// Contract:
//  1. Campaign for leadership through etcd (store.Campaign); block until
//     elected or ctx ends.
//  2. While leader, wake on any change under units/, machines/ or metadata/
//     (coalesced), and on a periodic tick (engine_reconcile_interval), then
//     reconcile: read one consistent store.Snapshot, run the pure
//     schedule.Schedule over it, diff the result against the stored schedule
//     and reasons, and write the difference with store.Apply (leader-fenced
//     transactions; bursts of changes are batched into one round).
//  3. Losing leadership (session lost or a fenced write refused) ends the
//     round; the engine campaigns again.
//  4. Reconcile is level-triggered and idempotent: running it twice on the
//     same snapshot writes nothing the second time.
package engine
