package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/etcdkv"

	"github.com/fleetd/fleet/internal/fleet"
)

// ErrLeaseGone is returned (wrapped) by Resume when the lease to take over
// has expired (or no longer holds the machine).
var ErrLeaseGone = errors.New("machine lease gone")

// Resume takes over the presence of an earlier run of this machine's
// fleetd (a restart): if lease is still alive and machines/<m.ID> is on
// it, it rewrites the machine on the same lease and keeps the lease alive,
// so the machine and its unit states never disappear. Otherwise it fails
// with ErrLeaseGone (wrapped) and the caller registers anew.
func (s *Store) Resume(ctx context.Context, m fleet.Machine, kvLease etcdkv.LeaseID) (*Presence, error) {
	lease := clientv3.LeaseID(kvLease)
	if m.ID == "" || lease == clientv3.NoLease {
		return nil, fmt.Errorf("store: resume machine %q: %w", m.ID, ErrLeaseGone)
	}
	rctx, cancel := s.req(ctx)
	ttl, err := s.cli.TimeToLive(rctx, lease)
	cancel()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && ttl.TTL <= 0) {
		return nil, fmt.Errorf("store: resume machine %s: lease %x: %w", m.ID, int64(lease), ErrLeaseGone)
	}
	if err != nil {
		return nil, fmt.Errorf("store: resume machine %s: %w", m.ID, err)
	}
	key := s.layout.Machine(m.ID)
	rctx, cancel = s.req(ctx)
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
		Then(clientv3.OpPut(key, mustJSON(m), clientv3.WithLease(lease))).
		Commit()
	cancel()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil, fmt.Errorf("store: resume machine %s: lease %x: %w", m.ID, int64(lease), ErrLeaseGone)
	}
	if err != nil {
		return nil, fmt.Errorf("store: resume machine %s: %w", m.ID, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("store: resume machine %s: the machine is not on lease %x: %w", m.ID, int64(lease), ErrLeaseGone)
	}
	// Renew the lease now: the previous run's last renewal may be nearly
	// a TTL ago, and Renewed must not claim a later one.
	sent := time.Now()
	rctx, cancel = s.req(ctx)
	_, err = s.cli.KeepAliveOnce(rctx, lease)
	cancel()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil, fmt.Errorf("store: resume machine %s: lease %x: %w", m.ID, int64(lease), ErrLeaseGone)
	}
	if err != nil {
		return nil, fmt.Errorf("store: resume machine %s: renew lease: %w", m.ID, err)
	}
	return s.keepAlive(m.ID, lease, time.Duration(ttl.GrantedTTL)*time.Second, sent), nil
}

// Renewed returns when the lease was last granted or renewed by this
// Presence.
func (p *Presence) Renewed() time.Time { return p.keep.Renewed() }

// Release stops keeping the lease alive without revoking it: the machine
// and its unit states stay until the lease expires, unless a restarted
// fleetd takes the lease over first (Resume).
func (p *Presence) Release() {
	p.once.Do(p.keep.stop)
}
