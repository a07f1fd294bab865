package etcdserver_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartOnPortZeroReportsRealURLs(t *testing.T) {
	ctx := testCtx(t)
	var logs bytes.Buffer
	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		Name:             "m1",
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{"http://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		TickMs:           10,
		ElectionMs:       100,
		UnsafeNoFsync:    true,
		Logger:           slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, us := range [][]string{srv.ClientURLs(), srv.PeerURLs()} {
		if len(us) != 1 {
			t.Fatalf("URLs = %v; want one", us)
		}
		u, err := url.Parse(us[0])
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Port() == "" {
			t.Fatalf("URL %q: want 127.0.0.1 with the real port", us[0])
		}
	}
	cli := etcdtest.NewClient(t, srv.ClientURLs())
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// Raised from etcd's default of 128.
	ops := make([]clientv3.Op, 500)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprint("k", i), "v")
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatalf("txn of 500 ops: %v", err)
	}
	cli.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-srv.Err():
	case <-ctx.Done():
		t.Fatal("Err channel not closed after Close")
	}
	// Only etcd's errors reach the logger, never its info chatter.
	if out := logs.String(); strings.Contains(out, "level=INFO") || strings.Contains(out, "level=WARN") {
		t.Errorf("etcd logged below error level:\n%s", out)
	}
}

func TestStartRequiresDataDir(t *testing.T) {
	if _, err := etcdserver.Start(testCtx(t), etcdserver.Config{}); err == nil {
		t.Fatal("Start without DataDir succeeded")
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = etcdserver.Start(testCtx(t), etcdserver.Config{
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{"http://" + ln.Addr().String()},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
	})
	if err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
}

func freeURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// The recipe of the package doc: a static 3-member bootstrap, then a 4th
// member added with MemberAdd and ClusterState "existing".
func TestStaticClusterAndMemberAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four members")
	}
	ctx := testCtx(t)
	type member struct{ name, client, peer string }
	var ms []member
	var initial []string
	for i := range 3 {
		m := member{fmt.Sprint("m", i+1), freeURL(t), freeURL(t)}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	cfg := func(m member, cluster, state string) etcdserver.Config {
		return etcdserver.Config{
			Name:                m.name,
			DataDir:             t.TempDir(),
			ListenClientURLs:    []string{m.client},
			ListenPeerURLs:      []string{m.peer},
			InitialCluster:      cluster,
			InitialClusterToken: "test",
			ClusterState:        state,
			TickMs:              10,
			ElectionMs:          100,
			UnsafeNoFsync:       true,
		}
	}
	srvs := make([]*etcdserver.Server, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			srvs[i], errs[i] = etcdserver.Start(ctx, cfg(m, strings.Join(initial, ","), "new"))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", ms[i].name, err)
		}
		t.Cleanup(func() { srvs[i].Close() })
	}

	cli := etcdtest.NewClient(t, []string{ms[0].client, ms[1].client, ms[2].client})
	if _, err := cli.Put(ctx, "before", "4th"); err != nil {
		t.Fatal(err)
	}

	m4 := member{"m4", freeURL(t), freeURL(t)}
	// etcd refuses to add a member until the cluster has been healthy for a
	// few seconds ("unhealthy cluster"): retry.
	var resp *clientv3.MemberAddResponse
	await(t, "the cluster accepting a fourth member", 60*time.Second, func() (bool, string) {
		var err error
		resp, err = cli.MemberAdd(ctx, []string{m4.peer})
		if err != nil && !strings.Contains(err.Error(), "unhealthy cluster") {
			t.Fatal(err)
		}
		return err == nil, fmt.Sprint(err)
	})
	var cluster []string
	for _, m := range resp.Members {
		name := m.Name
		if m.ID == resp.Member.ID {
			name = m4.name
		}
		for _, u := range m.PeerURLs {
			cluster = append(cluster, name+"="+u)
		}
	}
	srv4, err := etcdserver.Start(ctx, cfg(m4, strings.Join(cluster, ","), "existing"))
	if err != nil {
		t.Fatalf("start m4: %v", err)
	}
	t.Cleanup(func() { srv4.Close() })

	cli4 := etcdtest.NewClient(t, srv4.ClientURLs())
	got, err := cli4.Get(ctx, "before")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "4th" {
		t.Fatalf("m4 reads %v; want the value written before it joined", got.Kvs)
	}
	list, err := cli4.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 4 {
		t.Fatalf("%d members; want 4", len(list.Members))
	}
}
