package etcdkv

import (
	"context"
	"fmt"
	"time"

	"errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrLeaseNotFound is returned (wrapped) for a lease that expired or was
// revoked.
var ErrLeaseNotFound = errors.New("lease not found")

func leaseErr(err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("%w: %w", ErrLeaseNotFound, err)
	}
	return err
}

// seconds rounds ttl up to whole seconds (etcd's unit), at least 1.
func seconds(ttl time.Duration) int64 {
	s := int64((ttl + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Grant creates a lease of ttl (rounded up to whole seconds).
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.Grant(rctx, seconds(ttl))
	if err != nil {
		return NoLease, fmt.Errorf("etcd lease grant: %w", err)
	}
	return LeaseID(resp.ID), nil
}

// KeepAliveOnce renews lease once and returns its new TTL.
func (c *Client) KeepAliveOnce(ctx context.Context, lease LeaseID) (time.Duration, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.KeepAliveOnce(rctx, clientv3.LeaseID(lease))
	if err != nil {
		return 0, fmt.Errorf("etcd lease %x keepalive: %w", lease, leaseErr(err))
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// Revoke ends lease and deletes its keys.
func (c *Client) Revoke(ctx context.Context, lease LeaseID) error {
	rctx, cancel := c.req(ctx)
	defer cancel()
	if _, err := c.raw.Revoke(rctx, clientv3.LeaseID(lease)); err != nil {
		return fmt.Errorf("etcd lease %x revoke: %w", lease, leaseErr(err))
	}
	return nil
}

// TimeToLive returns the remaining and the granted TTL of lease;
// ErrLeaseNotFound (wrapped) when it is gone.
func (c *Client) TimeToLive(ctx context.Context, lease LeaseID) (remaining, granted time.Duration, err error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.TimeToLive(rctx, clientv3.LeaseID(lease))
	if err != nil {
		return 0, 0, fmt.Errorf("etcd lease %x: %w", lease, leaseErr(err))
	}
	if resp.TTL < 0 {
		return 0, 0, fmt.Errorf("etcd lease %x: %w", lease, ErrLeaseNotFound)
	}
	return time.Duration(resp.TTL) * time.Second, time.Duration(resp.GrantedTTL) * time.Second, nil
}
