package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultRequestTimeout bounds every single request.
const DefaultRequestTimeout = 5 * time.Second

// LeaseID identifies an etcd lease; NoLease is none.
type LeaseID int64

// NoLease is the zero lease: a key without one lives until deleted.
const NoLease LeaseID = 0

// KV is one key as etcd stores it.
type KV struct {
	Key       string
	Value     []byte
	CreateRev int64 // revision of the key's creation
	ModRev    int64 // revision of its last change
	Version   int64 // number of changes since its creation
	Lease     LeaseID
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut: the key was created or changed.
	EventPut EventType = iota
	// EventDelete: the key was deleted (or its lease expired).
	EventDelete
)

func (t EventType) String() string {
	if t == EventDelete {
		return "delete"
	}
	return "put"
}

// Event is one change of a key. For a delete, KV holds the key and the
// deletion's revision (ModRev); Prev holds the value before the change when
// the watch asked for it (WatchOptions.PrevKV).
type Event struct {
	Type EventType
	KV   KV
	Prev *KV
}

// Client is an etcd client with fleet's conventions (see the package doc).
type Client struct {
	raw     *clientv3.Client
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout sets the deadline of each single request.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// New wraps an existing clientv3 client (the embedded etcd's, a test's).
func New(raw *clientv3.Client, opts ...Option) *Client {
	c := &Client{raw: raw, timeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Raw returns the clientv3 client, for internal/store only.
func (c *Client) Raw() *clientv3.Client { return c.raw }

// Endpoints returns the client's etcd endpoints.
func (c *Client) Endpoints() []string { return c.raw.Endpoints() }

// Done is closed when the client is closed.
func (c *Client) Done() <-chan struct{} { return c.raw.Ctx().Done() }

// Close closes the client.
func (c *Client) Close() error { return c.raw.Close() }

// RequestTimeout is the deadline of each single request.
func (c *Client) RequestTimeout() time.Duration { return c.timeout }

func (c *Client) req(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// ErrCompacted is returned (wrapped) when a revision asked for was
// compacted away.
var ErrCompacted = errors.New("revision compacted")

// IsCompacted reports whether err says that a revision was compacted.
func IsCompacted(err error) bool {
	return errors.Is(err, ErrCompacted) || errors.Is(err, rpctypes.ErrCompacted) ||
		(err != nil && strings.Contains(err.Error(), rpctypes.ErrCompacted.Error()))
}

// IsNoSpace reports whether err is etcd refusing a write because its space
// quota (or fleet's disk guard) raised the NOSPACE alarm.
func IsNoSpace(err error) bool {
	return errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace) ||
		(err != nil && strings.Contains(err.Error(), rpctypes.ErrNoSpace.Error()))
}

func fromPB(kv *mvccpb.KeyValue) KV {
	if kv == nil {
		return KV{}
	}
	return KV{Key: string(kv.Key), Value: kv.Value, CreateRev: kv.CreateRevision, ModRev: kv.ModRevision,
		Version: kv.Version, Lease: LeaseID(kv.Lease)}
}

// Get reads one key. found is false for a missing key; rev is the store's
// revision at the read.
func (c *Client) Get(ctx context.Context, key string) (kv KV, found bool, rev int64, err error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.Get(rctx, key)
	if err != nil {
		return KV{}, false, 0, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, false, resp.Header.Revision, nil
	}
	return fromPB(resp.Kvs[0]), true, resp.Header.Revision, nil
}

// ListOptions tune List.
type ListOptions struct {
	// Limit caps the number of keys returned (0: all); More says whether
	// there were more.
	Limit int64
	// KeysOnly leaves values out.
	KeysOnly bool
	// CountOnly returns only Count.
	CountOnly bool
	// From lists keys >= From (still under the prefix) instead of all, to
	// page through a large prefix.
	From string
	// Rev reads at that revision (0: the newest).
	Rev int64
}

// ListResult is what List read.
type ListResult struct {
	KVs   []KV // sorted by key
	Count int64
	More  bool
	Rev   int64
}

// List reads every key under prefix, sorted by key.
func (c *Client) List(ctx context.Context, prefix string, o ListOptions) (ListResult, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	key := prefix
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if o.From != "" && o.From > prefix {
		key = o.From
	}
	if o.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(o.Limit))
	}
	if o.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if o.CountOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if o.Rev > 0 {
		opts = append(opts, clientv3.WithRev(o.Rev))
	}
	resp, err := c.raw.Get(rctx, key, opts...)
	if err != nil {
		if o.Rev > 0 && IsCompacted(err) {
			err = fmt.Errorf("%w: %w", ErrCompacted, err)
		}
		return ListResult{}, fmt.Errorf("etcd list %s: %w", prefix, err)
	}
	out := ListResult{Count: resp.Count, More: resp.More, Rev: resp.Header.Revision, KVs: make([]KV, len(resp.Kvs))}
	for i, kv := range resp.Kvs {
		out.KVs[i] = fromPB(kv)
	}
	return out, nil
}

// ListPrefixes reads several prefixes at one revision (one read-only
// transaction); the result holds their keys in the order of prefixes.
func (c *Client) ListPrefixes(ctx context.Context, prefixes []string) ([]KV, int64, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	ops := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		ops[i] = clientv3.OpGet(p, clientv3.WithPrefix())
	}
	resp, err := c.raw.Txn(rctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %s: %w", strings.Join(prefixes, " "), err)
	}
	var kvs []KV
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			kvs = append(kvs, fromPB(kv))
		}
	}
	return kvs, resp.Header.Revision, nil
}

// Put writes key = value, on lease if it is not NoLease. It returns the
// write's revision.
func (c *Client) Put(ctx context.Context, key, value string, lease LeaseID) (int64, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	var opts []clientv3.OpOption
	if lease != NoLease {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(lease)))
	}
	resp, err := c.raw.Put(rctx, key, value, opts...)
	if err != nil {
		return 0, fmt.Errorf("etcd put %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// Delete deletes key (and, with prefix, every key under it). It returns
// the number of keys deleted and the revision.
func (c *Client) Delete(ctx context.Context, key string, prefix bool) (int64, int64, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	resp, err := c.raw.Delete(rctx, key, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("etcd delete %s: %w", key, err)
	}
	return resp.Deleted, resp.Header.Revision, nil
}
