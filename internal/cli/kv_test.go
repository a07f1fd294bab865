package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/api"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// kvServer is a real API on a real etcd.
func kvServer(t *testing.T) string {
	t.Helper()
	st := store.New(etcdkv.New(etcdtest.New(t)), "/fleet-cli-test/")
	srv := httptest.NewServer(api.New(api.Config{Store: st, MachineID: "m"}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestKV(t *testing.T) {
	env := []string{"FLEETCTL_ENDPOINT=" + kvServer(t)}
	run := func(args ...string) result {
		t.Helper()
		return runCLI(t, context.Background(), env, append([]string{"kv"}, args...)...)
	}
	if r := run("set", "/services/web/1/host", "10.0.0.1:80"); r.code != 0 || r.stdout != "10.0.0.1:80\n" {
		t.Fatalf("set: %+v", r)
	}
	if r := run("get", "/services/web/1/host"); r.code != 0 || r.stdout != "10.0.0.1:80\n" {
		t.Fatalf("get: %+v", r)
	}
	run("set", "services/web/2/host", "10.0.0.2:80") // a relative key is absolute
	if r := run("ls", "/services/web"); r.code != 0 || r.stdout != "/services/web/1\n/services/web/2\n" {
		t.Fatalf("ls: %+v", r)
	}
	if r := run("ls", "--recursive", "/services"); r.code != 0 || r.stdout != "/services/web/1/host\n/services/web/2/host\n" {
		t.Fatalf("ls --recursive: %+v", r)
	}
	if r := run("ls"); r.code != 0 || r.stdout != "/services\n" {
		t.Fatalf("ls /: %+v", r)
	}
	if r := run("rm", "/services/web/1/host"); r.code != 0 || r.stdout != "" {
		t.Fatalf("rm: %+v", r)
	}
	if r := run("get", "/services/web/1/host"); r.code != kvExitServer || r.stderr != "Error:  100: Key not found (/services/web/1/host)\n" {
		t.Fatalf("get missing: %+v", r)
	}
	if r := run("rm", "--recursive", "/services"); r.code != 0 {
		t.Fatalf("rm --recursive: %+v", r)
	}
	if r := run("ls", "/services"); r.code != kvExitServer {
		t.Fatalf("ls after rm: %+v", r)
	}

	// TTL.
	if r := run("set", "/tmp/x", "gone soon", "--ttl", "1"); r.code != 0 {
		t.Fatalf("set --ttl: %+v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for run("get", "/tmp/x").code == 0 {
		if time.Now().After(deadline) {
			t.Fatal("key with --ttl 1 did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Watch: the first change, then exit.
	done := make(chan result, 1)
	go func() { done <- run("watch", "/w/k") }()
	var w result
	deadline = time.Now().Add(30 * time.Second)
wait:
	for {
		run("set", "/w/k", "hello")
		select {
		case w = <-done:
			break wait
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("watch did not return")
		}
	}
	if w.code != 0 || w.stdout != "hello\n" {
		t.Fatalf("watch: %+v", w)
	}

	// Bad input.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, kvExitBadArgs, "needs a command"},
		{[]string{"frob", "/x"}, kvExitBadArgs, `unknown kv command "frob"`},
		{[]string{"set", "/x"}, kvExitBadArgs, "wrong number of arguments for kv set"},
		{[]string{"set", "/x", "v", "--ttl", "soon"}, kvExitBadArgs, `invalid --ttl "soon"`},
		{[]string{"get", "/x", "--ttl", "5"}, kvExitBadArgs, "--ttl applies to kv set only"},
		{[]string{"set", "/fleet-cli-test/units/x", "v"}, kvExitServer, "fleet's own prefix"},
	} {
		r := run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("kv %v: %+v; want exit %d with %q", tc.args, r, tc.code, tc.msg)
		}
	}
}

func TestKVUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := runCLI(t, context.Background(), []string{"FLEETCTL_ENDPOINT=http://" + addr}, "kv", "get", "/x")
	if r.code != kvExitConnection || !strings.Contains(r.stderr, "cannot reach the fleet API") {
		t.Fatalf("%+v", r)
	}
}
