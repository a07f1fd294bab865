package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// TestNoSpace: while a NOSPACE alarm is up (a member's disk is nearly full),
// every write the API makes is answered 507 with the explanation, nothing
// of it is stored, and reads and deletes go on.
func TestNoSpace(t *testing.T) {
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), "/fleet-test/")
	const why = "etcd refuses writes: the disk under /d on machine m is nearly full"
	var explained atomic.Int32
	srv := httptest.NewServer(New(Config{Store: st, MachineID: machineA, Version: testVersion,
		NoSpace: func(ctx context.Context) string {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("NoSpace called without a deadline")
			}
			explained.Add(1)
			return why
		}}).Handler())
	defer srv.Close()
	do := func(method, path, body string) response {
		t.Helper()
		return doURL(t, srv.URL, method, path, body, contentTypeHeader("application/json"))
	}
	for _, name := range []string{"old.service", "gone.service"} {
		if r := do("PUT", "/fleet/v1/units/"+name, unitBody(name, "Service|ExecStart|/bin/true")); r.code != http.StatusCreated {
			t.Fatalf("PUT %s before the alarm: %d %s", name, r.code, r.body)
		}
	}

	ctx := t.Context()
	status, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	member := status.Header.MemberId
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: member, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ what, method, path, body string }{
		{"create", "PUT", "/fleet/v1/units/hello.service", helloJSON},
		{"desired state", "PUT", "/fleet/v1/units/old.service", `{"desiredState":"launched"}`},
		{"kv", "PUT", "/fleet/v1/kv/services/web/1/host", `{"value":"10.0.0.1:80"}`},
		{"kv with ttl (a lease)", "PUT", "/fleet/v1/kv/services/web/2/host", `{"value":"10.0.0.2:80","ttl":"30s"}`},
		{"metadata", "PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/` + machineA + `/metadata/disk","value":{"value":"full"}}]`},
	} {
		expectError(t, c.what, do(c.method, c.path, c.body), http.StatusInsufficientStorage, why)
	}
	if explained.Load() == 0 {
		t.Error("NoSpace never called")
	}
	// Nothing half-written: the refused unit is absent, the other unchanged.
	expectError(t, "refused unit", do("GET", "/fleet/v1/units/hello.service", ""), 404, msgUnitNotFound)
	if u, err := st.Unit(ctx, "old.service"); err != nil || u.DesiredState != "inactive" {
		t.Errorf("old.service after a refused desired state: %+v %v", u, err)
	}
	if r := do("GET", "/fleet/v1/units", ""); r.code != 200 {
		t.Errorf("list while full: %d %s", r.code, r.body)
	}
	if r := do("DELETE", "/fleet/v1/units/gone.service", ""); r.code != http.StatusNoContent {
		t.Errorf("destroy while full: %d %s", r.code, r.body)
	}

	// Without NoSpace: the generic message.
	generic := httptest.NewServer(New(Config{Store: st, MachineID: machineA, Version: testVersion}).Handler())
	defer generic.Close()
	expectError(t, "generic", doURL(t, generic.URL, "PUT", "/fleet/v1/units/hello.service", helloJSON, contentTypeHeader("application/json")),
		http.StatusInsufficientStorage, msgNoSpace)

	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: member, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if r := do("PUT", "/fleet/v1/units/hello.service", helloJSON); r.code != http.StatusCreated {
		t.Errorf("PUT after the alarm: %d %s", r.code, r.body)
	}
}

func TestNoSpaceClassification(t *testing.T) {
	for _, err := range []error{
		rpctypes.ErrNoSpace,
		rpctypes.ErrGRPCNoSpace,
		fmt.Errorf("store: create unit %q: %w", "x", rpctypes.ErrNoSpace),
	} {
		if !isNoSpace(err) {
			t.Errorf("isNoSpace(%v) = false", err)
		}
		if isUnavailable(err) {
			t.Errorf("isUnavailable(%v) = true", err)
		}
	}
	for _, err := range []error{errors.New("database space exceeded"), rpctypes.ErrGRPCRequestTooLarge, context.DeadlineExceeded} {
		if isNoSpace(err) {
			t.Errorf("isNoSpace(%v) = true", err)
		}
	}
}
