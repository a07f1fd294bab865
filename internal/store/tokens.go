package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TokenRecord is an API token registered in etcd: its role and where it
// came from. The token itself is never stored, only its SHA-256.
type TokenRecord struct {
	Role    string    `json:"role"`
	Machine string    `json:"machine,omitempty"`
	Created time.Time `json:"created"`
}

// RegisterToken records a token's hash (lowercase hex SHA-256) unless it
// is registered already; it reports whether it wrote.
func (s *Store) RegisterToken(ctx context.Context, hash string, rec TokenRecord) (bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("register token: %w", err)
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	k := s.layout.Token(hash)
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(b))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("register token: %w", err)
	}
	return resp.Succeeded, nil
}

// Token returns the record of a token hash; ok is false when it is not
// registered.
func (s *Store) Token(ctx context.Context, hash string) (rec TokenRecord, ok bool, err error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Token(hash))
	if err != nil {
		return rec, false, fmt.Errorf("token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return rec, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return rec, false, fmt.Errorf("token %s: %w", hash, err)
	}
	return rec, true, nil
}
