package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/fleetd/fleet/internal/fleet"
)

// Leadership is a won election: the leader key engine/leader/<lease> and its
// create revision, which fences every Apply.
type Leadership struct {
	Key       string
	Rev       int64
	MachineID string

	keep     *leaseKeeper
	election *concurrency.Election
	s        *Store
}

// Done is closed when the leader's lease is lost (expired, the client
// closed, or no renewal succeeded for its TTL) or after Resign. The leader
// must stop writing then; Apply would fail anyway.
func (l *Leadership) Done() <-chan struct{} { return l.keep.Done() }

// Resign gives up the leadership (deletes the leader key), stops renewing
// the lease and revokes it.
func (l *Leadership) Resign(ctx context.Context) error {
	rctx, cancel := l.s.req(ctx)
	err := l.election.Resign(rctx)
	cancel()
	cerr := l.s.endLease(ctx, l.keep)
	if err != nil {
		return fmt.Errorf("store: resign leadership of %s: %w", l.MachineID, err)
	}
	if cerr != nil {
		return fmt.Errorf("store: resign leadership of %s: %w", l.MachineID, cerr)
	}
	return nil
}

// endLease stops renewing k's lease and revokes it.
func (s *Store) endLease(ctx context.Context, k *leaseKeeper) error {
	k.stop()
	rctx, cancel := s.req(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := s.cli.Revoke(rctx, k.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("revoke lease %x: %w", int64(k.lease), err)
	}
	return nil
}

// Campaign blocks until machineID leads the engine or ctx ends. The
// leadership lives on a lease of ttl, kept alive like a machine's (see
// leaseKeeper) until Resign or until the lease is lost (see Done).
func (s *Store) Campaign(ctx context.Context, machineID string, ttl time.Duration) (*Leadership, error) {
	for {
		l, err := s.campaignOnce(ctx, machineID, ttl)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errSessionLost) || ctx.Err() != nil {
			return nil, fmt.Errorf("store: campaign for engine leader as %s: %w", machineID, err)
		}
	}
}

var errSessionLost = errors.New("session lost while campaigning")

func (s *Store) campaignOnce(ctx context.Context, machineID string, ttl time.Duration) (*Leadership, error) {
	granted := time.Now()
	rctx, cancel := s.req(ctx)
	grant, err := s.cli.Grant(rctx, ttlSeconds(ttl))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	// The renewals outlive ctx: they end with Resign or with the lease.
	keep := startKeeper(s.cli, grant.ID, time.Duration(grant.TTL)*time.Second, granted)
	abandon := func() { _ = s.endLease(ctx, keep) }
	// The election only needs the session to name the lease: the session's
	// own keepalive (one stream shared by all the client's leases, which
	// a lost etcd leader can stall for longer than the TTL) is not used; its
	// context is cancelled at once and keep renews the lease.
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	scancel()
	session, err := concurrency.NewSession(s.cli,
		concurrency.WithLease(grant.ID),
		concurrency.WithTTL(int(grant.TTL)),
		concurrency.WithContext(sctx))
	if err != nil {
		abandon()
		return nil, fmt.Errorf("new session: %w", err)
	}
	el := concurrency.NewElection(session, s.layout.LeaderPrefix())
	if err := campaignUntilLost(ctx, el, machineID, keep); err != nil {
		abandon()
		return nil, err
	}
	// Campaign also returns when our own key vanished with an expired
	// lease while we waited: check that we still hold it.
	rctx, cancel = s.req(ctx)
	resp, err := s.cli.Get(rctx, el.Key())
	cancel()
	if err != nil {
		abandon()
		return nil, fmt.Errorf("check leader key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != el.Rev() {
		abandon()
		return nil, errSessionLost
	}
	return &Leadership{Key: el.Key(), Rev: el.Rev(), MachineID: machineID, keep: keep, election: el, s: s}, nil
}

// campaignUntilLost campaigns until el is won, ctx ends, or keep's lease is
// lost (errSessionLost).
func campaignUntilLost(ctx context.Context, el *concurrency.Election, machineID string, keep *leaseKeeper) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-keep.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	// When its context ends, etcd's Campaign resigns with the client's
	// own context, which blocks for as long as etcd is unreachable (and so
	// held up fleetd's exit on SIGTERM). Do not wait for that: the caller
	// ends the lease anyway, and the resign finishes, or fails, later.
	errc := make(chan error, 1)
	go func() { errc <- el.Campaign(cctx, machineID) }()
	var err error
	select {
	case err = <-errc:
	case <-cctx.Done():
		select {
		case err = <-errc: // it finished just then
		default:
			err = cctx.Err()
		}
	}
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		return errSessionLost
	}
	return err
}

// Leader returns the machine ID of the current engine leader, or "" if there
// is none.
func (s *Store) Leader(ctx context.Context) (string, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	opts := append([]clientv3.OpOption{clientv3.WithPrefix()}, clientv3.WithFirstCreate()...)
	resp, err := s.cli.Get(rctx, s.layout.LeaderPrefix()+"/", opts...)
	if err != nil {
		return "", fmt.Errorf("store: engine leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Changes is one engine pass's writes. Within one Changes, a key named more
// than once takes its last write, deletes counting before puts (so Delete
// and Put of the same entry is a Put).
type Changes struct {
	Put           []ScheduleEntry
	Delete        []ScheduleEntry // only Unit and Machine are used
	PutReasons    []fleet.Reason
	DeleteReasons []string
}

// Empty reports whether there is nothing to write.
func (c Changes) Empty() bool {
	return len(c.Put) == 0 && len(c.Delete) == 0 && len(c.PutReasons) == 0 && len(c.DeleteReasons) == 0
}

// ApplyPipeline is how many of Apply's transactions may be in flight at
// once. Each one is fenced on its own, so their order does not matter for
// safety; pipelining lets etcd batch them into fewer fsyncs.
const ApplyPipeline = 8

// Apply writes c (schedule/ and placements/ entries together, reasons/) in
// transactions of at most MaxTxnOps operations, each fenced by the leader
// key's create revision, up to ApplyPipeline of them in flight at once. The
// transactions that only delete are all committed before any other is sent.
// If l is no longer the leader, every transaction committed after the
// leadership ended writes nothing, no further one is sent, and Apply returns
// ErrNotLeader (wrapped); transactions committed before stay.
func (s *Store) Apply(ctx context.Context, l *Leadership, c Changes) error {
	if l == nil {
		return fmt.Errorf("store: apply: no leadership: %w", ErrNotLeader)
	}
	fence := clientv3.Compare(clientv3.CreateRevision(l.Key), "=", l.Rev)
	commit := func(chunk []clientv3.Op) error {
		rctx, cancel := s.req(ctx)
		resp, err := s.cli.Txn(rctx).If(fence).Then(chunk...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("store: apply: %w", err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("store: apply as %s: %w", l.MachineID, ErrNotLeader)
		}
		return nil
	}
	deletes, rest := s.changeOps(c)
	if err := pipeline(ctx, packGroups(deletes, MaxTxnOps), ApplyPipeline, commit); err != nil {
		return err
	}
	return pipeline(ctx, packGroups(rest, MaxTxnOps), ApplyPipeline, commit)
}

// packGroups packs groups of ops into chunks of at most max ops, never
// splitting a group.
func packGroups(groups [][]clientv3.Op, max int) [][]clientv3.Op {
	var chunks [][]clientv3.Op
	var cur []clientv3.Op
	for _, g := range groups {
		if len(cur) > 0 && len(cur)+len(g) > max {
			chunks = append(chunks, cur)
			cur = nil
		}
		cur = append(cur, g...)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// pipeline commits chunks with at most width in flight. After the first
// error it sends nothing more, waits for those in flight, and returns the
// first error (ErrNotLeader first).
func pipeline(ctx context.Context, chunks [][]clientv3.Op, width int, commit func([]clientv3.Op) error) error {
	if len(chunks) == 1 {
		return commit(chunks[0])
	}
	sem := make(chan struct{}, width)
	var mu sync.Mutex
	var first error
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return first != nil }
	var wg sync.WaitGroup
	for _, chunk := range chunks {
		sem <- struct{}{}
		if failed() || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := commit(chunk); err != nil {
				mu.Lock()
				if first == nil || (errors.Is(err, ErrNotLeader) && !errors.Is(first, ErrNotLeader)) {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return fmt.Errorf("store: apply: %w", ctx.Err())
	}
	return first
}

// changeOps turns c into groups of ops that must land in the same
// transaction (a schedule key and its placement index), one group per
// entry or reason, deduplicated: the groups that only delete, and the rest.
func (s *Store) changeOps(c Changes) (deletes, rest [][]clientv3.Op) {
	var groups [][]clientv3.Op
	index := map[string]int{}
	add := func(id string, ops ...clientv3.Op) {
		if i, ok := index[id]; ok {
			groups[i] = ops
			return
		}
		index[id] = len(groups)
		groups = append(groups, ops)
	}
	entryID := func(e ScheduleEntry) string { return "e\x00" + e.Unit + "\x00" + e.Machine }
	for _, e := range c.Delete {
		add(entryID(e),
			clientv3.OpDelete(s.layout.Schedule(e.Machine, e.Unit)),
			clientv3.OpDelete(s.layout.Placement(e.Unit, e.Machine)))
	}
	for _, u := range c.DeleteReasons {
		add("r\x00"+u, clientv3.OpDelete(s.layout.Reason(u)))
	}
	for _, e := range c.Put {
		v := mustJSON(scheduleValue{Hash: e.Hash, DesiredState: e.DesiredState})
		add(entryID(e),
			clientv3.OpPut(s.layout.Schedule(e.Machine, e.Unit), v),
			clientv3.OpPut(s.layout.Placement(e.Unit, e.Machine), ""))
	}
	for _, r := range c.PutReasons {
		add("r\x00"+r.Unit, clientv3.OpPut(s.layout.Reason(r.Unit), mustJSON(r)))
	}
	for _, g := range groups {
		if g[0].IsDelete() {
			deletes = append(deletes, g)
		} else {
			rest = append(rest, g)
		}
	}
	return deletes, rest
}
