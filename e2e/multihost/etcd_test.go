package multihost

import (
	"context"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type memberStatus struct {
	id, leader uint64
}

func etcdClient(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// etcdStatus asks one member (host:port) for its ID and the leader it
// follows.
func etcdStatus(endpoint string) (memberStatus, error) {
	cli, err := etcdClient(endpoint)
	if err != nil {
		return memberStatus{}, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, endpoint)
	if err != nil {
		return memberStatus{}, err
	}
	return memberStatus{id: st.Header.MemberId, leader: st.Leader}, nil
}

// etcdMembers returns member ID → name.
func etcdMembers(endpoints []string) (map[uint64]string, error) {
	cli, err := etcdClient(endpoints...)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	m := map[uint64]string{}
	for _, mem := range resp.Members {
		m[mem.ID] = mem.Name
	}
	return m, nil
}

// etcdMoveLeader asks the leader at endpoint to hand leadership to id.
func etcdMoveLeader(endpoint string, id uint64) error {
	cli, err := etcdClient(endpoint)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.MoveLeader(ctx, id)
	return err
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o644) }
