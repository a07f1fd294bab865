package etcdkv

import (
	"context"
	"fmt"
)

// MemberStatus is what one etcd member says about itself.
type MemberStatus struct {
	Endpoint string
	MemberID uint64
	Leader   uint64 // 0: the member knows no leader
	RaftTerm uint64
	DBSize   int64 // bytes of the backend file
	DBInUse  int64 // bytes in use (DBSize less free pages)
	Revision int64
	Alarms   []string
}

// IsLeader reports whether the member is the raft leader.
func (s MemberStatus) IsLeader() bool { return s.Leader != 0 && s.Leader == s.MemberID }

// Status asks the first endpoint that answers for its status.
func (c *Client) Status(ctx context.Context) (MemberStatus, error) {
	var last error
	for _, ep := range c.raw.Endpoints() {
		st, err := c.StatusOf(ctx, ep)
		if err == nil {
			return st, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no endpoint")
	}
	return MemberStatus{}, last
}

// StatusOf asks endpoint for its status.
func (c *Client) StatusOf(ctx context.Context, endpoint string) (MemberStatus, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.Status(rctx, endpoint)
	if err != nil {
		return MemberStatus{}, fmt.Errorf("etcd status of %s: %w", endpoint, err)
	}
	st := MemberStatus{Endpoint: endpoint, Leader: resp.Leader, RaftTerm: resp.RaftTerm,
		DBSize: resp.DbSize, DBInUse: resp.DbSizeInUse}
	if resp.Header != nil {
		st.MemberID = resp.Header.MemberId
		st.Revision = resp.Header.Revision
	}
	st.Alarms = append(st.Alarms, resp.Errors...)
	return st, nil
}

// Member is one member of the etcd cluster.
type Member struct {
	ID         uint64
	Name       string // "" for a member added but not started yet
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Members lists the cluster's members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.MemberList(rctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	out := make([]Member, len(resp.Members))
	for i, m := range resp.Members {
		out[i] = Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return out, nil
}

// MemberAdd announces a new member with peerURLs; it returns the new
// member's ID and the members after the change.
func (c *Client) MemberAdd(ctx context.Context, peerURLs []string) (uint64, []Member, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.MemberAdd(rctx, peerURLs)
	if err != nil {
		return 0, nil, fmt.Errorf("etcd member add: %w", err)
	}
	out := make([]Member, len(resp.Members))
	for i, m := range resp.Members {
		out[i] = Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return resp.Member.ID, out, nil
}

// MemberRemove removes member id.
func (c *Client) MemberRemove(ctx context.Context, id uint64) error {
	rctx, cancel := c.req(ctx)
	defer cancel()
	if _, err := c.raw.MemberRemove(rctx, id); err != nil {
		return fmt.Errorf("etcd member remove %x: %w", id, err)
	}
	return nil
}

// Alarm is an alarm raised on a member (NOSPACE: writes are refused).
type Alarm struct {
	MemberID uint64
	Kind     string // "NOSPACE", "CORRUPT"
}

// Alarms lists the cluster's raised alarms.
func (c *Client) Alarms(ctx context.Context) ([]Alarm, error) {
	rctx, cancel := c.req(ctx)
	defer cancel()
	resp, err := c.raw.AlarmList(rctx)
	if err != nil {
		return nil, fmt.Errorf("etcd alarm list: %w", err)
	}
	out := make([]Alarm, len(resp.Alarms))
	for i, a := range resp.Alarms {
		out[i] = Alarm{MemberID: a.MemberID, Kind: a.Alarm.String()}
	}
	return out, nil
}
