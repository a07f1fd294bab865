// Package etcdkv is fleet's one seam to etcd v3. Every package that reads,
// writes or watches etcd does it through this package (or through
// internal/store, which is built on it); only internal/store/...,
// internal/etcdserver, the benchmarks and the test harness import
// go.etcd.io/etcd/client/v3 (a go list test enforces it).
//
// It holds:
//
//   - the one client constructor, Dial: TLS, username/password or the
//     cluster token (clusterauth.Credentials), gRPC keepalives, a dial
//     timeout, a probe read that makes a wrong credential fail at once,
//     and the endpoints named in its errors;
//   - plain, untyped operations on keys (Get, List, Put, Delete, Txn with
//     conditions, leases) whose types (KV, Event, LeaseID) carry no
//     clientv3 type;
//   - Watch, a watch from a revision whose batches say when the revision
//     was compacted;
//   - Mirror, the one list-then-watch loop: it reads one or more prefixes at
//     one revision, hands the content to Reset, applies each watch batch
//     through Apply, calls Changed once a burst has settled (coalescing),
//     and reads everything again after a compaction, a canceled watch or
//     an error, with backoff. Its timers come from a Clock, so tests drive
//     time.
//
// Contract:
//  1. ctx comes first and bounds the call; single requests also get the
//     client's request timeout (DefaultRequestTimeout unless WithTimeout).
//  2. Errors are wrapped with the operation and key; IsNoSpace and
//     IsCompacted classify them.
//  3. Watches require an etcd leader (a member cut off from the quorum
//     ends them instead of staying silent).
//  4. Raw exposes the clientv3 client for internal/store only (elections,
//     fenced transactions).
package etcdkv
