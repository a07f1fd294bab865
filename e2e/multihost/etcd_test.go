package multihost

import (
	"context"
	"os"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/clusterauth"
)

type memberStatus struct {
	id, leader uint64
}

// etcdClients are the test's etcd clients of one cluster, one per member
// client URL, created on first use and kept: each new client logs in as
// etcd's root user, which costs the member a bcrypt comparison, too much
// CPU to spend every 200 ms while the members elect a leader on 2 cores.
// A member that restarts forgets its auth tokens: the client logs in
// again by itself.
type etcdClients struct {
	tokenFile string
	mu        sync.Mutex
	byURL     map[string]*clientv3.Client
}

func newEtcdClients(tokenFile string) *etcdClients {
	return &etcdClients{tokenFile: tokenFile, byURL: map[string]*clientv3.Client{}}
}

// get returns the client of one member's client URL. It connects as
// fleetd does: etcd's root user with the cluster token as password, the
// server certificate verified against the CA derived from the token.
func (e *etcdClients) get(endpoint string) (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cli := e.byURL[endpoint]; cli != nil {
		return cli, nil
	}
	r, err := clusterauth.Credentials{Endpoints: []string{endpoint}, TokenFile: e.tokenFile}.Resolve()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		TLS:         r.TLS,
		Username:    r.Username,
		Password:    r.Password,
		Logger:      zap.NewNop(),
		// A kept connection to a member that was killed or partitioned
		// is noticed dead within 13 s, as in fleetd.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	e.byURL[endpoint] = cli
	return cli, nil
}

func (e *etcdClients) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for url, cli := range e.byURL {
		cli.Close()
		delete(e.byURL, url)
	}
}

// status asks one member (its client URL) for its ID and the leader it
// follows.
func (e *etcdClients) status(endpoint string) (memberStatus, error) {
	cli, err := e.get(endpoint)
	if err != nil {
		return memberStatus{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, endpoint)
	if err != nil {
		return memberStatus{}, err
	}
	return memberStatus{id: st.Header.MemberId, leader: st.Leader}, nil
}

// members returns member ID → name, asking the endpoints in turn.
func (e *etcdClients) members(endpoints []string) (map[uint64]string, error) {
	var lastErr error
	for _, ep := range endpoints {
		cli, err := e.get(ep)
		if err != nil {
			lastErr = err
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := cli.MemberList(ctx)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		m := map[uint64]string{}
		for _, mem := range resp.Members {
			m[mem.ID] = mem.Name
		}
		return m, nil
	}
	return nil, lastErr
}

// moveLeader asks the leader at endpoint to hand leadership to id.
func (e *etcdClients) moveLeader(endpoint string, id uint64) error {
	cli, err := e.get(endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.MoveLeader(ctx, id)
	return err
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o644) }
