package etcdkv

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cond is one condition of a transaction.
type Cond struct {
	key string
	cmp clientv3.Cmp
	say string
}

// Key returns the key the condition is about.
func (c Cond) Key() string { return c.key }

func (c Cond) String() string { return c.say }

// Absent holds when key does not exist.
func Absent(key string) Cond {
	return Cond{key, clientv3.Compare(clientv3.CreateRevision(key), "=", 0), key + " absent"}
}

// Exists holds when key exists.
func Exists(key string) Cond {
	return Cond{key, clientv3.Compare(clientv3.CreateRevision(key), ">", 0), key + " exists"}
}

// ValueIs holds when key exists with value v.
func ValueIs(key, v string) Cond {
	return Cond{key, clientv3.Compare(clientv3.Value(key), "=", v), key + " = " + v}
}

// ModRevIs holds when key's last change was at rev (0: the key is absent).
func ModRevIs(key string, rev int64) Cond {
	return Cond{key, clientv3.Compare(clientv3.ModRevision(key), "=", rev), fmt.Sprintf("%s modified at %d", key, rev)}
}

// CreateRevIs holds when key was created at rev (0: the key is absent).
func CreateRevIs(key string, rev int64) Cond {
	return Cond{key, clientv3.Compare(clientv3.CreateRevision(key), "=", rev), fmt.Sprintf("%s created at %d", key, rev)}
}

// LeaseIs holds when key is attached to lease.
func LeaseIs(key string, lease LeaseID) Cond {
	return Cond{key, clientv3.Compare(clientv3.LeaseValue(key), "=", clientv3.LeaseID(lease)), fmt.Sprintf("%s on lease %x", key, lease)}
}

// Op is one write of a transaction.
type Op struct {
	op  clientv3.Op
	say string
}

// PutOp writes key = value on lease (NoLease: none).
func PutOp(key, value string, lease LeaseID) Op {
	var opts []clientv3.OpOption
	if lease != NoLease {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(lease)))
	}
	return Op{clientv3.OpPut(key, value, opts...), "put " + key}
}

// DeleteOp deletes key.
func DeleteOp(key string) Op { return Op{clientv3.OpDelete(key), "delete " + key} }

// DeletePrefixOp deletes every key under prefix.
func DeletePrefixOp(prefix string) Op {
	return Op{clientv3.OpDelete(prefix, clientv3.WithPrefix()), "delete " + prefix + "*"}
}

// TxnResult is the outcome of Txn.
type TxnResult struct {
	// Succeeded: every condition held and the ops were applied.
	Succeeded bool
	// Rev is the store's revision after the transaction.
	Rev int64
	// Current holds, when the conditions failed, the current value of each
	// condition's key that exists (by key), read in the same transaction,
	// so that the caller can say which condition failed and why.
	Current map[string]KV
	// Deleted counts the keys the ops deleted.
	Deleted int64
}

// Txn applies ops if every condition holds, atomically.
func (c *Client) Txn(ctx context.Context, conds []Cond, ops ...Op) (TxnResult, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	cmps := make([]clientv3.Cmp, len(conds))
	var elses []clientv3.Op
	seen := map[string]bool{}
	for i, cd := range conds {
		cmps[i] = cd.cmp
		if !seen[cd.key] {
			seen[cd.key] = true
			elses = append(elses, clientv3.OpGet(cd.key))
		}
	}
	thens := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		thens[i] = o.op
	}
	resp, err := c.raw.Txn(rctx).If(cmps...).Then(thens...).Else(elses...).Commit()
	if err != nil {
		return TxnResult{}, fmt.Errorf("etcd txn (%s): %w", describeOps(ops), leaseErr(err))
	}
	out := TxnResult{Succeeded: resp.Succeeded, Rev: resp.Header.Revision}
	if resp.Succeeded {
		for _, r := range resp.Responses {
			if d := r.GetResponseDeleteRange(); d != nil {
				out.Deleted += d.Deleted
			}
		}
		return out, nil
	}
	out.Current = map[string]KV{}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			out.Current[string(kv.Key)] = fromPB(kv)
		}
	}
	return out, nil
}

func describeOps(ops []Op) string {
	s := make([]string, 0, len(ops))
	for i, o := range ops {
		if i == 3 {
			s = append(s, fmt.Sprintf("and %d more", len(ops)-3))
			break
		}
		s = append(s, o.say)
	}
	return strings.Join(s, ", ")
}
