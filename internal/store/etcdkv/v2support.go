package etcdkv

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReadSet is what ReadKeys read: at one revision, some keys and the first
// key under some prefixes.
type ReadSet struct {
	// Keys holds each key asked for that exists.
	Keys map[string]KV
	// First holds, for each prefix asked for that has keys, its first
	// key (by key order) and whether there are more.
	First map[string]KV
	More  map[string]bool
	Rev   int64
}

// ReadKeys reads keys and the first two keys under each of prefixes in one
// read-only transaction (one revision). It serves the etcd v2 emulation
// (internal/etcdv2), which must see a key, its directory marker and its
// ancestors together.
func (c *Client) ReadKeys(ctx context.Context, keys, prefixes []string) (ReadSet, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	ops := make([]clientv3.Op, 0, len(keys)+len(prefixes))
	for _, k := range keys {
		ops = append(ops, clientv3.OpGet(k))
	}
	for _, p := range prefixes {
		ops = append(ops, clientv3.OpGet(p, clientv3.WithRange(clientv3.GetPrefixRangeEnd(p)),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(2)))
	}
	resp, err := c.raw.Txn(rctx).Then(ops...).Commit()
	if err != nil {
		return ReadSet{}, fmt.Errorf("etcd read %d keys, %d prefixes: %w", len(keys), len(prefixes), err)
	}
	out := ReadSet{Keys: map[string]KV{}, First: map[string]KV{}, More: map[string]bool{}, Rev: resp.Header.Revision}
	for i, r := range resp.Responses {
		rr := r.GetResponseRange()
		if rr == nil || len(rr.Kvs) == 0 {
			continue
		}
		if i < len(keys) {
			out.Keys[keys[i]] = fromPB(rr.Kvs[0])
			continue
		}
		p := prefixes[i-len(keys)]
		out.First[p] = fromPB(rr.Kvs[0])
		out.More[p] = len(rr.Kvs) > 1
	}
	return out, nil
}

// RaftStatus returns the raft index and term of the first endpoint that
// answers (etcd v2's X-Raft-Index and X-Raft-Term headers).
func (c *Client) RaftStatus(ctx context.Context) (index, term uint64, err error) {
	err = fmt.Errorf("no endpoint")
	for _, ep := range c.raw.Endpoints() {
		rctx, cancel := c.req(ctx)
		resp, e := c.raw.Status(rctx, ep)
		cancel()
		if e == nil {
			return resp.RaftIndex, resp.RaftTerm, nil
		}
		err = fmt.Errorf("etcd status of %s: %w", ep, e)
	}
	return 0, 0, err
}
