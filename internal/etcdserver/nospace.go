package etcdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// IsNoSpace reports whether err is etcd refusing a write for lack of space
// ("etcdserver: mvcc: database space exceeded"): a NOSPACE alarm is raised,
// by the disk guard of a member whose disk is nearly full or by etcd's
// backend quota.
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace) {
		return true
	}
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		s := st.GRPCStatus()
		return s.Code() == codes.ResourceExhausted && s.Message() == rpctypes.ErrorDesc(rpctypes.ErrGRPCNoSpace)
	}
	return false
}

// noSpaceGeneric is ExplainNoSpace's answer when it learns nothing more.
const noSpaceGeneric = "etcd refuses writes: database space exceeded (the disk of an etcd member is nearly full, " +
	"or etcd's database reached its size quota); free space and writes resume"

// ExplainNoSpace says, in one line for an operator, why etcd refuses writes:
// for each member with a NOSPACE alarm, the machine, directory and free space
// its disk guard recorded under prefix (Config.NoSpaceKeyPrefix, or
// DefaultNoSpaceKeyPrefix if empty), or, without a record, that its
// database reached etcd's quota. kc needs root's rights (to list alarms).
// Errors give a generic message; it never returns "".
func ExplainNoSpace(ctx context.Context, kc *etcdkv.Client, prefix string) string {
	if prefix == "" {
		prefix = DefaultNoSpaceKeyPrefix
	}
	alarms, err := kc.Alarms(ctx)
	if err != nil {
		return noSpaceGeneric
	}
	var ids []uint64
	for _, a := range alarms {
		if a.Kind == pb.AlarmType_NOSPACE.String() {
			ids = append(ids, a.MemberID)
		}
	}
	if len(ids) == 0 {
		return noSpaceGeneric
	}
	recs := map[uint64]noSpaceRecord{}
	if res, err := kc.List(ctx, prefix, etcdkv.ListOptions{}); err == nil {
		for _, kv := range res.KVs {
			var r noSpaceRecord
			var id uint64
			if json.Unmarshal(kv.Value, &r) != nil {
				continue
			}
			if _, err := fmt.Sscanf(strings.TrimPrefix(kv.Key, prefix), "%x", &id); err == nil {
				recs[id] = r
			}
		}
	}
	names := map[uint64]string{}
	if members, err := kc.Members(ctx); err == nil {
		for _, m := range members {
			names[m.ID] = m.Name
		}
	}
	var why []string
	for _, id := range ids {
		if r, ok := recs[id]; ok {
			why = append(why, r.explain())
			continue
		}
		name := names[id]
		if name == "" {
			name = fmt.Sprintf("%x", id)
		}
		why = append(why, fmt.Sprintf("the database of etcd member %s reached etcd's size quota (database space exceeded); "+
			"compact and defragment it, then disarm the alarm (etcdctl alarm disarm)", name))
	}
	return "etcd refuses writes: " + strings.Join(why, "; and ")
}

func (r noSpaceRecord) explain() string {
	machine := r.Machine
	if machine == "" {
		machine = r.Member
	}
	return fmt.Sprintf("the disk under %s on machine %s is nearly full (%d MB free, below the %d MB kept free for etcd); "+
		"free space there and writes resume by themselves once %d MB are free",
		r.DataDir, machine, r.Free>>20, r.Min>>20, r.Resume>>20)
}
