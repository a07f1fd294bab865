package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/etcdkv"

	"github.com/fleetd/fleet/internal/fleet"
)

// Presence is a machine's registration: machines/<id> on a lease kept alive
// until Close or until the lease is lost.
type Presence struct {
	s     *Store
	id    string
	lease clientv3.LeaseID
	keep  *leaseKeeper
	once  sync.Once
}

// ttlSeconds rounds ttl up to whole seconds, at least 1.
func ttlSeconds(ttl time.Duration) int64 {
	sec := int64((ttl + time.Second - 1) / time.Second)
	return max(sec, 1)
}

// Register publishes m under machines/<m.ID> on a new lease of ttl and keeps
// the lease alive. It fails with ErrMachineIDInUse when another live fleetd
// (a key on another live lease) holds the same ID; that lease expires at most
// ttl after its owner died, so a restarting fleetd may retry.
func (s *Store) Register(ctx context.Context, m fleet.Machine, ttl time.Duration) (*Presence, error) {
	if m.ID == "" {
		return nil, errors.New("store: register machine: empty machine ID")
	}
	key := s.layout.Machine(m.ID)
	val := mustJSON(m)

	granted := time.Now()
	rctx, cancel := s.req(ctx)
	grant, err := s.cli.Grant(rctx, ttlSeconds(ttl))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("store: register machine %s: grant lease: %w", m.ID, err)
	}
	lease := grant.ID
	revoke := func() {
		rctx, cancel := s.req(context.WithoutCancel(ctx))
		defer cancel()
		_, _ = s.cli.Revoke(rctx, lease)
	}

	for {
		rctx, cancel := s.req(ctx)
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		if err != nil {
			revoke()
			return nil, fmt.Errorf("store: register machine %s: %w", m.ID, err)
		}
		if resp.Succeeded {
			break
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		old := kvs[0]
		if other := clientv3.LeaseID(old.Lease); other != clientv3.NoLease && other != lease {
			rctx, cancel := s.req(ctx)
			ttlResp, err := s.cli.TimeToLive(rctx, other)
			cancel()
			if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				revoke()
				return nil, fmt.Errorf("store: register machine %s: check lease of existing registration: %w", m.ID, err)
			}
			if err == nil && ttlResp.TTL > 0 {
				revoke()
				return nil, fmt.Errorf("store: register machine %s: machine ID %s is already registered by a live fleetd (lease %x, expires within %ds if that fleetd is dead): %w",
					m.ID, m.ID, int64(other), ttlResp.TTL, ErrMachineIDInUse)
			}
		}
		// A key without a lease, or on a dead lease not yet reaped: take it.
		rctx, cancel = s.req(ctx)
		resp, err = s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", old.ModRevision)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
			Commit()
		cancel()
		if err != nil {
			revoke()
			return nil, fmt.Errorf("store: register machine %s: %w", m.ID, err)
		}
		if resp.Succeeded {
			break
		}
		if err := ctx.Err(); err != nil {
			revoke()
			return nil, fmt.Errorf("store: register machine %s: %w", m.ID, err)
		}
	}

	return s.keepAlive(m.ID, lease, time.Duration(grant.TTL)*time.Second, granted), nil
}

// keepAlive keeps lease (of ttl, last renewed at renewed) alive until Close,
// Release or its loss. The renewals outlive the caller's ctx.
func (s *Store) keepAlive(id string, lease clientv3.LeaseID, ttl time.Duration, renewed time.Time) *Presence {
	return &Presence{s: s, id: id, lease: lease, keep: startKeeper(s.cli, lease, ttl, renewed)}
}

// Lease returns the presence's lease, for writing unit states on it.
func (p *Presence) Lease() etcdkv.LeaseID { return etcdkv.LeaseID(p.lease) }

// MachineID returns the registered machine ID.
func (p *Presence) MachineID() string { return p.id }

// Done is closed when the lease is lost (expired, revoked, the client
// closed, or no renewal succeeded for its TTL) or after Close or Release.
func (p *Presence) Done() <-chan struct{} { return p.keep.Done() }

// Update rewrites the machine's value on the same lease. m.ID is ignored.
func (p *Presence) Update(ctx context.Context, m fleet.Machine) error {
	m.ID = p.id
	rctx, cancel := p.s.req(ctx)
	defer cancel()
	if _, err := p.s.cli.Put(rctx, p.s.layout.Machine(p.id), mustJSON(m), clientv3.WithLease(p.lease)); err != nil {
		return fmt.Errorf("store: update machine %s: %w", p.id, err)
	}
	return nil
}

// Close stops the keepalives and revokes the lease, deleting the machine and
// everything else written on the lease (unit states).
func (p *Presence) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.keep.stop()
		rctx, cancel := p.s.req(ctx)
		defer cancel()
		if _, rerr := p.s.cli.Revoke(rctx, p.lease); rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
			err = fmt.Errorf("store: unregister machine %s: %w", p.id, rerr)
		}
	})
	return err
}

// Machines returns the live machines sorted by ID, with dynamic metadata
// (metadata/<id>/<key>) merged over each machine's own: a value overrides
// the key, "" hides it.
func (s *Store) Machines(ctx context.Context) ([]fleet.Machine, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).Then(
		clientv3.OpGet(s.layout.MachinesDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.MetadataDir(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("store: machines: %w", err)
	}
	ms, err := s.decodeMachines(resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs)
	if err != nil {
		return nil, fmt.Errorf("store: machines: %w", err)
	}
	return ms, nil
}

func (s *Store) decodeMachines(machines, metadata []*mvccpb.KeyValue) ([]fleet.Machine, error) {
	overrides := map[string]map[string]string{}
	for _, kv := range metadata {
		id, key, ok := splitTwo(string(kv.Key), s.layout.MetadataDir())
		if !ok {
			continue
		}
		if overrides[id] == nil {
			overrides[id] = map[string]string{}
		}
		overrides[id][key] = string(kv.Value)
	}
	ms := make([]fleet.Machine, 0, len(machines))
	for _, kv := range machines {
		id := strings.TrimPrefix(string(kv.Key), s.layout.MachinesDir())
		var m fleet.Machine
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("decode machine %q: %w", id, err)
		}
		m.ID = id
		m = withOverrides(m, overrides[id])
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms, nil
}

// withOverrides merges dynamic metadata over a machine's own: a value
// overrides the key, "" hides it.
func withOverrides(m fleet.Machine, ov map[string]string) fleet.Machine {
	if len(ov) == 0 {
		return m
	}
	md := maps.Clone(m.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	for k, v := range ov {
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
	if len(md) == 0 {
		md = nil
	}
	m.Metadata = md
	return m
}

// SetMetadata sets a dynamic metadata override for a machine (it need not be
// live). value "" hides the key of the machine's own metadata.
func (s *Store) SetMetadata(ctx context.Context, machineID, key, value string) error {
	if err := checkMetadataArgs(machineID, key); err != nil {
		return fmt.Errorf("store: set metadata %q of %s: %w", key, machineID, err)
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Put(rctx, s.layout.Metadata(machineID, key), value); err != nil {
		return fmt.Errorf("store: set metadata %q of %s: %w", key, machineID, err)
	}
	return nil
}

// DeleteMetadata removes a dynamic metadata override, so the machine's own
// value (if any) shows again.
func (s *Store) DeleteMetadata(ctx context.Context, machineID, key string) error {
	if err := checkMetadataArgs(machineID, key); err != nil {
		return fmt.Errorf("store: delete metadata %q of %s: %w", key, machineID, err)
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Delete(rctx, s.layout.Metadata(machineID, key)); err != nil {
		return fmt.Errorf("store: delete metadata %q of %s: %w", key, machineID, err)
	}
	return nil
}

func checkMetadataArgs(machineID, key string) error {
	switch {
	case machineID == "" || strings.Contains(machineID, "/"):
		return errors.New("invalid machine ID")
	case key == "" || strings.Contains(key, "/"):
		return errors.New("invalid key")
	}
	return nil
}
