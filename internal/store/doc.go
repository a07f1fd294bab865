// Package store is the only package that talks to etcd (v3). It owns the key
// layout below and offers typed operations on it.
//
// Key layout (P = the configured prefix, default "/_coreos.com/fleet/";
// values are JSON unless noted):
//
//	P units/<name>                  fleet.Unit (options, hash, desiredState)   no lease; until destroyed
//	P machines/<id>                 fleet.Machine                               lease of that machine
//	P metadata/<id>/<key>           raw value; "" hides the key                 no lease (PATCH /machines)
//	P schedule/<machine>/<unit>     ScheduleEntry{hash, desiredState}           written by the leader only
//	P placements/<unit>/<machine>   "" (index by unit of the same entries)      written with schedule/ in one txn
//	P states/<machine>/<unit>       fleet.UnitState                             lease of that machine
//	P reasons/<unit>                fleet.Reason (why it is not placed)         written by the leader only
//	P engine/leader/<lease>         machine ID (concurrency.Election)           leader's lease
//	P auth/tokens/<sha256 hex>      TokenRecord (role of an API token)          no lease; the token itself is never stored
//	P revisions/<unit>/<hash>       Revision (a unit's or template's file)      no lease; newest MaxRevisions per unit kept
//	P rollouts/<unit>               rollout.Rollout (a rolling update)          no lease; written by the API (create, pause, abort) and the leader (steps)
//	P checks/<machine>/<unit>       raw "service:port: error" of a failing check lease of that machine; deleted when it passes
//	P jobs/<unit>/<machine>         JobRecord (how a Job unit's run ended)     no lease; written by that machine's agent, deleted by the API (DELETE /jobs)
//
// Contract:
//  1. Every engine write (schedule/, placements/, reasons/) is made by Apply in
//     transactions that also compare the leader key's create revision, so a
//     deposed leader cannot write (ErrNotLeader).
//  2. Whatever must vanish with its owner (machines/, states/) is written on
//     the owner's lease.
//  3. Agents watch only their own schedule/<machine>/ prefix; the leader
//     watches units/, machines/, metadata/, rollouts/ and jobs/. Notify watches are wake-ups:
//     the watcher re-reads. A View (the leader's in-memory copy) and a
//     ScheduleFollower (an agent's) are kept by etcdkv.Mirror: one read at
//     one revision, then watches whose events are applied to the copy; any
//     failure makes it read everything again (mirrored.go).
//  4. Every call takes ctx first and wraps errors with the operation name.
//     ErrNotFound is returned (wrapped) for a missing unit.
//  5. Snapshot reads units, machines, metadata, schedule, reasons, rollouts
//     and jobs at one revision.
//
// API (see store.go):
//
//	New(kv *etcdkv.Client, prefix string, opts ...Option) *Store        // prefix "" = DefaultPrefix; WithRequestTimeout(d) (default 5 s per request)
//	(*Store) Prefix() string
//	(*Store) KV() *etcdkv.Client; Layout() keys.Layout                  // the seam client (same connection) and the key layout
//	(*Store) CreateUnit(ctx, u fleet.Unit) (created bool, err error)   // absent or different hash: put (desired state from u); same hash: no-op, false
//	(*Store) CreateUnits(ctx, []fleet.Unit) (int, error)               // many new units, MaxTxnOps per txn; a txn meeting an existing unit falls back to CreateUnit
//	(*Store) Unit(ctx, name) (fleet.Unit, error)
//	(*Store) Units(ctx) ([]fleet.Unit, error)                          // sorted by name
//	(*Store) UnitsByName(ctx, names []string) (map[string]fleet.Unit, error) // batched gets; missing names are absent
//	(*Store) SetDesiredState(ctx, name, fleet.JobState) error
//	(*Store) DestroyUnit(ctx, name) error                              // deletes units/<name> and reasons/<name>
//	(*Store) Register(ctx, m fleet.Machine, ttl time.Duration) (*Presence, error)
//	                                                                   // ErrMachineIDInUse (wrapped) if a live lease of another fleetd holds the ID
//	(*Presence) Lease() etcdkv.LeaseID; MachineID() string; Done() <-chan struct{} (lease lost: gone, client closed, or unrenewed for its TTL); Update(ctx, m) error; Close(ctx) error (revoke)
//	(*Presence) Renewed() time.Time (last grant/renewal); Release() (stop renewing, no revoke: a restarted fleetd may Resume)
//	(*Store) Resume(ctx, m fleet.Machine, lease) (*Presence, error)   // take over a live lease of this machine's previous run; ErrLeaseGone (wrapped) otherwise
//	(*Store) Machines(ctx) ([]fleet.Machine, error)                    // live only, dynamic metadata merged, sorted by ID
//	(*Store) SetMetadata(ctx, machineID, key, value string) error      // value "" hides the key
//	(*Store) DeleteMetadata(ctx, machineID, key string) error          // drops the override: the machine's own value shows again
//	(*Store) Schedule(ctx) ([]ScheduleEntry, error)
//	(*Store) MachineSchedule(ctx, machineID) ([]ScheduleEntry, int64, error)
//	(*Store) FollowSchedule(machineID) *ScheduleFollower                // an agent's watch-fed copy of its schedule (follow.go)
//	(*ScheduleFollower) Entries(ctx) ([]ScheduleEntry, error); Wake() <-chan struct{}; Invalidate(); Close()
//	(*Store) Placements(ctx, unit) ([]string, error)                   // machines a unit is scheduled on
//	(*Store) PutUnitStates(ctx, lease, []fleet.UnitState) error        // batched, on the lease
//	(*Store) DeleteUnitStates(ctx, machineID string, units []string) error
//	(*Store) UnitStates(ctx) ([]fleet.UnitState, error)                // sorted by (name, machineID)
//	(*Store) Reasons(ctx) (map[string]fleet.Reason, error); Reason(ctx, unit) (fleet.Reason, bool, error)
//	(*Store) Snapshot(ctx) (Snapshot, error)
//	(*Store) NewView() *View                                          // the engine leader's watch-fed copy of its inputs (view.go)
//	(*View) Snapshot(ctx) (Snapshot, error); Wake() <-chan struct{}; Applied(Changes); Invalidate(); Close()
//	(*Store) Campaign(ctx, machineID string, ttl time.Duration) (*Leadership, error)  // blocks until leader or ctx done
//	(*Leadership) Key, Rev, MachineID; Done() <-chan struct{}; Resign(ctx) error
//	(*Store) Leader(ctx) (machineID string, err error)
//	(*Store) Apply(ctx, *Leadership, Changes) error                    // chunked fenced txns (MaxTxnOps = 120 each), up to ApplyPipeline in flight, deletes first; ErrNotLeader
//	(*Store) RegisterToken(ctx, hash, TokenRecord) (bool, error)       // create-only; false if the hash is registered already
//	(*Store) Token(ctx, hash) (TokenRecord, bool, error)
//	(*Store) Notify(ctx, sub string) <-chan struct{}                  // coalesced wake-ups for changes under P+sub ("" = everything); closed when ctx ends
//	RevisionOwner(name) string                                        // the template for an instance, else name
//	(*Store) RecordRevision(ctx, owner, fleet.Unit, user, now) (Revision, error) // newest unless it is already; renumbers an older file; prunes
//	(*Store) Revisions(ctx, owner) ([]Revision, error); RevisionByHash(ctx, owner, hash) (Revision, bool, error)
//	(*Store) StartRollout(ctx, rollout.Rollout, file fleet.Unit, fileModRev int64, Revision) error // record + new file + revision in one txn; ErrRolloutActive, ErrConflict
//	(*Store) Rollout(ctx, unit) (RolloutRecord, error); Rollouts(ctx) ([]RolloutRecord, error)
//	(*Store) UpdateRollout(ctx, RolloutRecord) (int64, error)         // CAS on the record (pause, resume, abort); ErrConflict
//	(*Store) ApplyRollout(ctx, *Leadership, RolloutRecord, []fleet.Unit) (int64, error) // a driver step: record + unit files, fenced and CAS; ErrNotLeader, ErrConflict
//	(*Store) PutCheck(ctx, lease, machine, unit, msg) error; DeleteCheck(ctx, machine, unit) error; Check(ctx, machine, unit) (string, bool, error)
//	(*Store) PutJob(ctx, JobRecord) error; Jobs(ctx, unit) ([]JobRecord, error); AllJobs(ctx) ([]JobRecord, error)   // jobs.go
//	(*Store) MachineJobs(ctx, machine, units) (map[string]JobRecord, error); DeleteJobs(ctx, unit) (int, error)
//
// Every single etcd request gets its own deadline (WithRequestTimeout) under
// the caller's ctx, so a lost etcd leader fails calls instead of stalling
// them. Leases (a Presence's, a Leadership's) are renewed every TTL/4 by
// single KeepAliveOnce requests, hedged after TTL/10 (at most 500 ms), not
// by clientv3's shared keepalive stream, which one renewal stuck behind a
// vanished etcd leader blocks for longer than a short TTL (keeper.go). Campaign and Notify are bounded by ctx only. Snapshot and Machines
// read in one read-only transaction. CreateUnit, SetDesiredState and
// Register write with compare-and-swap on the revision they read, retried.
package store
