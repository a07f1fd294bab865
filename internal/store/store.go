package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/store/keys"
)

// DefaultPrefix is fleet's historical key prefix.
const DefaultPrefix = keys.DefaultPrefix

// DefaultRequestTimeout bounds every single etcd request.
const DefaultRequestTimeout = 5 * time.Second

// MaxTxnOps is the largest number of operations Apply and the batched state
// writes put in one transaction. An external etcd allows 128 by default
// (--max-txn-ops); the embedded one allows more.
const MaxTxnOps = 120

var (
	// ErrNotFound is returned (wrapped) when a unit does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotLeader is returned (wrapped) by Apply when the leadership it was
	// given is no longer the current one.
	ErrNotLeader = errors.New("not the engine leader any more")
	// ErrMachineIDInUse is returned (wrapped) by Register when another live
	// fleetd holds the same machine ID.
	ErrMachineIDInUse = errors.New("machine ID already registered")
)

// Store offers typed operations on fleet's etcd keys (see the package doc).
type Store struct {
	cli     *clientv3.Client
	prefix  string
	layout  keys.Layout
	timeout time.Duration
	kv      *etcdkv.Client
}

// Option configures a Store.
type Option func(*Store)

// WithRequestTimeout sets the deadline of each single etcd request
// (DefaultRequestTimeout by default). Long-lived calls (Campaign, watches)
// are bounded by their ctx only.
func WithRequestTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// New returns a Store using kv's connection under prefix (DefaultPrefix if empty; a
// trailing "/" is added if missing).
func New(kv *etcdkv.Client, prefix string, opts ...Option) *Store {
	cli := kv.Raw()
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &Store{cli: cli, prefix: prefix, layout: keys.New(prefix), timeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(s)
	}
	s.kv = etcdkv.New(cli, etcdkv.WithTimeout(s.timeout)) // same connection, the store's request timeout
	return s
}

// KV returns the etcd seam's client (the same connection), for packages
// that read, write or watch keys outside fleet's typed layout.
func (s *Store) KV() *etcdkv.Client { return s.kv }

// Layout returns the key layout under the store's prefix.
func (s *Store) Layout() keys.Layout { return s.layout }

// Prefix returns the key prefix, ending in "/".
func (s *Store) Prefix() string { return s.prefix }

// req derives the context of one etcd request.
func (s *Store) req(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// splitTwo splits "a/b" (relative to dir) into a and b.
func splitTwo(key, dir string) (string, string, bool) {
	rest, ok := strings.CutPrefix(key, dir)
	if !ok {
		return "", "", false
	}
	a, b, ok := strings.Cut(rest, "/")
	if !ok || a == "" || b == "" {
		return "", "", false
	}
	return a, b, true
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs of strings, maps and slices are marshalled here.
		panic(fmt.Sprintf("store: marshal %T: %v", v, err))
	}
	return string(b)
}

// chunkOps splits ops into transactions of at most MaxTxnOps operations.
func chunkOps(ops []clientv3.Op, max int) [][]clientv3.Op {
	var out [][]clientv3.Op
	for len(ops) > 0 {
		n := min(len(ops), max)
		out = append(out, ops[:n])
		ops = ops[n:]
	}
	return out
}
