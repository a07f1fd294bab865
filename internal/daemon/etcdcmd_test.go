package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver"
)

func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func runEtcdCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := etcdMain(t.Context(), args, nil, &out, &errb)
	return out.String(), errb.String(), code
}

// A static 3-member cluster, then `fleetd etcd member-add` of a fourth,
// started with the settings it printed, then member-list and member-remove.
func TestEtcdMemberAddListRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts four etcd members")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	type member struct{ name, client, peer string }
	var ms []member
	var initial []string
	for i := 1; i <= 4; i++ {
		m := member{fmt.Sprintf("m%d", i), freeURL(t), freeURL(t)}
		ms = append(ms, m)
		if i <= 3 {
			initial = append(initial, m.name+"="+m.peer)
		}
	}
	start := func(m member, initial, state string) (*etcdserver.Server, error) {
		return etcdserver.Start(ctx, etcdserver.Config{
			Name: m.name, DataDir: t.TempDir(),
			ListenClientURLs: []string{m.client}, ListenPeerURLs: []string{m.peer},
			InitialCluster: initial, ClusterState: state,
			TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true,
		})
	}
	var wg sync.WaitGroup
	srvs := make([]*etcdserver.Server, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() { srvs[i], errs[i] = start(ms[i], strings.Join(initial, ","), "new") })
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { srvs[i].Close() })
	}
	eps := "--endpoints=" + ms[0].client + "," + ms[1].client

	out, errOut, code := runEtcdCmd(t, "member-list", eps)
	if code != 0 || !strings.Contains(out, "m1") || !strings.Contains(out, "m3") {
		t.Fatalf("member-list: %d\n%s%s", code, out, errOut)
	}

	if _, errOut, code := runEtcdCmd(t, "member-add", eps, "--name", "m4"); code == 0 || !strings.Contains(errOut, "--peer-url") {
		t.Errorf("member-add without --peer-url: exit %d, %s", code, errOut)
	}
	out, errOut, code = runEtcdCmd(t, "member-add", eps, "--name", "m4", "--peer-url", ms[3].peer, "--env")
	if code != 0 {
		t.Fatalf("member-add: %d\n%s%s", code, out, errOut)
	}
	want := "FLEET_ETCD_NAME=m4\nFLEET_ETCD_INITIAL_CLUSTER=" + strings.Join(append(initial, "m4="+ms[3].peer), ",") +
		"\nFLEET_ETCD_INITIAL_CLUSTER_STATE=existing\n"
	if out != want {
		t.Fatalf("member-add --env:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = runEtcdCmd(t, "member-list", eps)
	if !strings.Contains(out, "(not started)") {
		t.Errorf("member-list before m4 started:\n%s", out)
	}
	// A second add while m4 has not started cannot give a usable cluster.
	if _, errOut, code := runEtcdCmd(t, "member-add", eps, "--timeout", "5s", "--name", "m5", "--peer-url", freeURL(t)); code == 0 {
		t.Errorf("member-add with a member not started: exit 0")
	} else {
		t.Logf("second member-add: %s", errOut)
	}

	s4, err := start(ms[3], strings.Join(append(initial, "m4="+ms[3].peer), ","), "existing")
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Close()
	out, _, _ = runEtcdCmd(t, "member-list", "--endpoints="+ms[3].client)
	if strings.Contains(out, "(not started)") || !strings.Contains(out, "m4") {
		t.Errorf("member-list from m4:\n%s", out)
	}

	if _, errOut, code := runEtcdCmd(t, "member-remove", eps, "nosuch"); code != 1 || !strings.Contains(errOut, "no member") {
		t.Errorf("member-remove nosuch: %d %s", code, errOut)
	}
	if out, errOut, code := runEtcdCmd(t, "member-remove", eps, "m4"); code != 0 || !strings.Contains(out, "removed member") {
		t.Errorf("member-remove m4: %d %s%s", code, out, errOut)
	}
	out, _, _ = runEtcdCmd(t, "member-list", eps)
	if strings.Contains(out, "m4") {
		t.Errorf("member-list after member-remove m4:\n%s", out)
	}
}

func TestEtcdCmdUsage(t *testing.T) {
	if _, _, code := runEtcdCmd(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	out, _, code := runEtcdCmd(t, "--help")
	if code != 0 || !strings.Contains(out, "member-add") || !strings.Contains(out, "-endpoints") {
		t.Errorf("--help: %d\n%s", code, out)
	}
	if _, errOut, code := runEtcdCmd(t, "bogus"); code != 1 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("bogus: %d %s", code, errOut)
	}
}
