package etcdv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

func (h *handler) members(ctx context.Context) ([]Member, error) {
	if h.cfg.Members != nil {
		return h.cfg.Members(ctx)
	}
	ms, err := h.kv.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		cu := m.ClientURLs
		if len(h.cfg.ClientURLs) > 0 {
			cu = h.cfg.ClientURLs
		}
		out = append(out, Member{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, PeerURLs: nonNil(m.PeerURLs), ClientURLs: nonNil(cu)})
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// serveMembers serves GET /v2/members (read-only: members are managed
// through fleet, not the v2 API).
func (h *handler) serveMembers(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	ms, err := h.members(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Member{"members": ms})
}

// serveMembersLeader serves GET /v2/members/leader (etcdctl v2's member
// list asks it): the leader member, 503 "During election" without one.
func (h *handler) serveMembersLeader(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	m, err := h.leader(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// serveLeader answers etcd 0.4's GET /v2/leader, which seed 004 uses
// ("curl http://127.0.0.1:4001/v2/leader"): the leader's peer URL as
// plain text. etcd 2 and later dropped it; every fleetd serves writes, so
// the answer is informational.
func (h *handler) serveLeader(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	m, err := h.leader(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	u := ""
	if len(m.PeerURLs) > 0 {
		u = m.PeerURLs[0]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(u))
}

// leader returns the etcd member that leads the cluster now.
func (h *handler) leader(ctx context.Context) (Member, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.kv.Status(ctx)
	if err != nil {
		return Member{}, err
	}
	if st.Leader == 0 {
		return Member{}, errors.New("During election")
	}
	ms, err := h.members(ctx)
	if err != nil {
		return Member{}, err
	}
	for _, m := range ms {
		if m.ID == fmt.Sprintf("%x", st.Leader) {
			return m, nil
		}
	}
	return Member{}, errors.New("During election")
}

func (h *handler) serveMachines(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	ms, err := h.members(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var urls []string
	for _, m := range ms {
		urls = append(urls, m.ClientURLs...)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(strings.Join(urls, ", ")))
}

func (h *handler) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	cluster := h.cfg.Version
	if parts := strings.SplitN(cluster, ".", 3); len(parts) == 3 {
		cluster = parts[0] + "." + parts[1] + ".0"
	}
	writeJSON(w, http.StatusOK, struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}{h.cfg.Version, cluster})
}

// serveHealth: healthy when etcd answers a status request with a leader.
func (h *handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	health := "true"
	st, err := h.kv.Status(ctx)
	if err != nil || st.Leader == 0 || len(st.Alarms) > 0 {
		health = "false"
	}
	status := http.StatusOK
	if health != "true" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"health":"%s"}`, health)
}

type leaderInfo struct {
	Leader    string    `json:"leader"`
	Uptime    string    `json:"uptime"`
	StartTime time.Time `json:"startTime"`
}

type selfStats struct {
	Name                 string     `json:"name"`
	ID                   string     `json:"id"`
	State                string     `json:"state"`
	StartTime            time.Time  `json:"startTime"`
	LeaderInfo           leaderInfo `json:"leaderInfo"`
	RecvAppendRequestCnt uint64     `json:"recvAppendRequestCnt"`
	SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
}

// serveStatsSelf describes the etcd member KV talks to, in v2's form;
// startTime is the handler's.
func (h *handler) serveStatsSelf(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	st, err := h.kv.Status(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	name := ""
	if ms, err := h.kv.Members(r.Context()); err == nil {
		for _, m := range ms {
			if m.ID == st.MemberID {
				name = m.Name
			}
		}
	}
	state := "StateFollower"
	if st.IsLeader() {
		state = "StateLeader"
	}
	writeJSON(w, http.StatusOK, selfStats{Name: name, ID: fmt.Sprintf("%x", st.MemberID), State: state, StartTime: h.start.UTC(),
		LeaderInfo: leaderInfo{Leader: fmt.Sprintf("%x", st.Leader), Uptime: time.Since(h.start).String(), StartTime: h.start.UTC()}})
}

// serveStatsLeader answers like etcd: the leader's followers (their raft
// stats are not available through v3), or 403 on a follower.
func (h *handler) serveStatsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	st, err := h.kv.Status(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	if !st.IsLeader() {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "not current leader"})
		return
	}
	followers := map[string]any{}
	if ms, err := h.kv.Members(r.Context()); err == nil {
		for _, m := range ms {
			if m.ID != st.MemberID {
				followers[fmt.Sprintf("%x", m.ID)] = map[string]any{
					"latency": map[string]float64{"current": 0, "average": 0, "standardDeviation": 0, "minimum": 0, "maximum": 0},
					"counts":  map[string]uint64{"fail": 0, "success": 0},
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": fmt.Sprintf("%x", st.MemberID), "followers": followers})
}

// serveStatsStore: etcd v2's store counters; this emulation keeps none.
func (h *handler) serveStatsStore(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	out := map[string]uint64{}
	for _, k := range []string{"getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
		"updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess", "compareAndSwapFail",
		"compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount", "watchers"} {
		out[k] = 0
	}
	writeJSON(w, http.StatusOK, out)
}
