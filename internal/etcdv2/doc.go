// Package etcdv2 serves etcd v2's HTTP API (keys, members, machines,
// stats, health, version) on an etcd v3 key space, through the
// internal/store/etcdkv seam, so that etcdctl v2, go-etcd, python-etcd and
// curl scripts written for CoreOS fleet's etcd keep working.
//
// Wiring is one call:
//
//	mux.Handle("/", etcdv2.New(etcdv2.Config{KV: kv, ClientURLs: urls,
//		Auth: etcdv2.TokenAuth(checkToken), Logger: log}))
//
// # Mapping
//
// The v2 key /a/b is the v3 key /a/b. createdIndex and modifiedIndex are
// the v3 create and mod revisions, X-Etcd-Index the store revision, and
// X-Raft-Index/X-Raft-Term come from the member's status. A TTL is a lease
// (one per write with a ttl); expiration and ttl are read from the lease.
// An update or compare-and-swap without ttl makes the key permanent, as in
// v2; refresh=true keeps the lease alive when its TTL is unchanged (no new
// revision, watchers see nothing) and writes the key again on a new lease
// otherwise.
//
// # Directories
//
// A directory is implied by the keys under it, plus a marker: the v3 key
// dir+"/" (for /a/b, the key "/a/b/") with the value "\x00etcd-v2-directory".
// A marker is written by mkdir (PUT dir=true) and for every missing
// ancestor of a written key, so directories outlive their last key as in
// v2, and it carries the directory's indexes and TTL lease. v2 keys are
// clean paths and never end in "/", so a marker cannot collide with a v2
// key; v3 readers of a prefix see markers as keys ending in "/" with that
// value and can skip them. A v3 key that is not a clean absolute path
// ("a", "/a//b", "/a/") is invisible here. A directory that only v3 keys
// imply (no marker, e.g. fleet's own) takes the smallest create revision
// of its keys as its indexes. Names starting with "_" are hidden from
// listings and recursive waits, as in v2.
//
// # Writes
//
// Every write reads the key, its marker and its ancestors at one revision
// (etcdkv.ReadKeys), decides like v2's store, and applies one transaction
// guarded by what it read (retrying on a conflict). POST names the new key
// with the 20-digit revision it expects to get, so in-order keys sort by
// creation.
//
// Keys under Config.FleetPrefix (DefaultFleetPrefix), and its ancestors,
// are read-only: a write gets errorCode 107 "Root is read only" (HTTP 400)
// with the key as cause, as the v2 root does.
//
// # Waits
//
// wait=true is a v3 watch of the key's prefix from waitIndex (from the
// next revision without it); the first event the wait sees is answered. A
// compacted waitIndex gets errorCode 401 "The event in requested index is
// outdated and cleared" (HTTP 400) with the cause "the requested history
// has been cleared [compactRev/waitIndex]". Changes are reported as "set"
// (v3 does not record whether a put was a create, an update or a
// compare-and-swap), deletions as "delete", and a deletion of a leased key
// whose lease is gone as "expire".
//
// # Differences from etcd v2
//
//   - set on an existing file keeps its createdIndex (v3 cannot delete
//     and put one key in a transaction);
//   - a directory's TTL expires its marker only, not the keys under it;
//   - a recursive delete shows a recursive waiter the deletion of the
//     directory or of its first key, once;
//   - listings are always sorted; /v2/stats/store counters are zero;
//     /v2/members is read-only.
//
// # Credentials
//
// Config.Auth decides; TokenAuth is fleet's rule (anonymous loopback
// callers read, writes need the token as the basic-auth password,
// etcdctl --username fleet:TOKEN, or as a bearer token). A refused request
// gets errorCode 110 with HTTP 401. A body over 1 MiB gets HTTP 413.
package etcdv2
