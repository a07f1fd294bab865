package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseKeeper keeps one lease alive with single renewals (KeepAliveOnce),
// each on a stream of its own, instead of clientv3's KeepAlive.
//
// clientv3's KeepAlive sends the renewals of every lease of a client on one
// stream, and an etcd member answers a stream's requests one after the
// other. A member forwards a renewal to the etcd leader; when the leader has
// just vanished, that one renewal can wait for the member's request timeout
// (5 s plus two election timeouts) and every later renewal on the stream
// queues behind it: longer than a short lease's TTL. Here a renewal that is
// not answered within hedge is not waited for: another one is sent on a new
// stream (the client's round-robin balancer picks the next endpoint), while
// the first may still succeed for a while. Any answer renews the lease.
type leaseKeeper struct {
	cli   *clientv3.Client
	lease clientv3.LeaseID
	ttl   time.Duration // the lease's TTL, as etcd granted it
	// renewed is when the request of the latest successful renewal was
	// sent (UnixNano): the lease lives at least ttl from then.
	renewed atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}
}

// maxRenewalsInFlight bounds the renewals of one lease sent and not yet
// answered.
const maxRenewalsInFlight = 4

// startKeeper renews lease (of ttl) from now on, the last renewal (or the
// grant) having been sent at renewed, until stop or until the lease is lost:
// etcd says it is gone, the client is closed, or no renewal succeeded for
// ttl (then the keeper revokes it, in case it survived).
func startKeeper(cli *clientv3.Client, lease clientv3.LeaseID, ttl time.Duration, renewed time.Time) *leaseKeeper {
	ttl = max(ttl, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	k := &leaseKeeper{cli: cli, lease: lease, ttl: ttl, cancel: cancel, done: make(chan struct{})}
	k.renewed.Store(renewed.UnixNano())
	go k.run(ctx)
	return k
}

// interval is the time between two renewals: a quarter of the TTL, which
// leaves room for an etcd leader election (up to two election timeouts,
// 2 s by default) before the lease has gone unrenewed for nearly its TTL.
func (k *leaseKeeper) interval() time.Duration { return k.ttl / 4 }

// hedge is how long a renewal may go unanswered before another one is sent:
// a tenth of the TTL, between 50 ms and 500 ms. A renewal is given up after
// three hedges: one stuck behind a vanished etcd leader would only fail at
// the member's request timeout.
func (k *leaseKeeper) hedge() time.Duration {
	return min(max(k.ttl/10, 50*time.Millisecond), 500*time.Millisecond)
}

func (k *leaseKeeper) Renewed() time.Time { return time.Unix(0, k.renewed.Load()) }

// Done is closed when the lease is lost or after stop.
func (k *leaseKeeper) Done() <-chan struct{} { return k.done }

// stop stops renewing (it does not revoke) and waits until the keeper's
// goroutines have ended.
func (k *leaseKeeper) stop() {
	k.cancel()
	<-k.done
}

func (k *leaseKeeper) run(ctx context.Context) {
	defer close(k.done)
	for {
		wait := time.Until(k.Renewed().Add(k.interval()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := k.renew(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil || errors.Is(err, rpctypes.ErrLeaseNotFound) || k.cli.Ctx().Err() != nil {
			return
		}
		// Unrenewed for its TTL: the lease has expired or is about to.
		// Revoke it in case etcd kept it (a leader change extends leases),
		// so that nothing lives on a lease nobody renews.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = k.cli.Revoke(rctx, k.lease)
		cancel()
		return
	}
}

type renewal struct {
	sent time.Time
	err  error
}

// renew renews the lease once: it sends a renewal, and another one each
// time hedge passes with none answered (or soon after one fails), until one
// succeeds, etcd reports the lease gone, or ttl has passed since the last
// renewal.
func (k *leaseKeeper) renew(ctx context.Context) error {
	var wg sync.WaitGroup
	// On return: cancel the renewals in flight, then wait for them.
	defer wg.Wait()
	rctx, cancel := context.WithDeadline(ctx, k.Renewed().Add(k.ttl))
	defer cancel()

	results := make(chan renewal, maxRenewalsInFlight)
	inFlight := 0
	next := time.NewTimer(0)
	defer next.Stop()
	var lastErr error
	for {
		select {
		case <-rctx.Done():
			if lastErr != nil {
				return errors.Join(rctx.Err(), lastErr)
			}
			return rctx.Err()
		case <-next.C:
			next.Reset(k.hedge())
			if inFlight == maxRenewalsInFlight {
				continue
			}
			inFlight++
			wg.Go(func() {
				sent := time.Now()
				actx, cancel := context.WithTimeout(rctx, 3*k.hedge())
				_, err := k.cli.KeepAliveOnce(actx, k.lease)
				cancel()
				results <- renewal{sent: sent, err: err}
			})
		case r := <-results:
			inFlight--
			switch {
			case r.err == nil:
				if r.sent.UnixNano() > k.renewed.Load() {
					k.renewed.Store(r.sent.UnixNano())
				}
				return nil
			case errors.Is(r.err, rpctypes.ErrLeaseNotFound):
				return r.err
			case k.cli.Ctx().Err() != nil:
				return r.err
			}
			lastErr = r.err
			if time.Since(r.sent) < k.hedge() {
				// A quick failure: try again 100 ms after it was
				// sent rather than a hedge after.
				next.Reset(max(time.Until(r.sent.Add(100*time.Millisecond)), 0))
			}
		}
	}
}
