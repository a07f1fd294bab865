package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/rollout"
)

const rolloutAnswer = `{"unit":"web@.service","fromHash":"aaaaaaa1","fromRevision":1,"toHash":"bbbbbbb2","toRevision":2,` +
	`"maxParallel":2,"minHealthyTime":10000000000,"healthyDeadline":300000000000,"user":"admin","phase":"running",` +
	`"targets":[{"name":"web@1.service","status":"updating","started":"2026-01-02T03:04:05Z"},{"name":"web@2.service","status":"pending"}],` +
	`"batches":0,"created":"2026-01-02T03:04:05Z","updated":"2026-01-02T03:04:05Z","progress":"0/2 updated, 1 in progress, waiting for health"}`

func TestRolloutCalls(t *testing.T) {
	f, c := newFake(t)
	ok := func(code int) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { writeRaw(w, code, rolloutAnswer) }
	}
	f.routes["POST /fleet/v1/rollouts"] = ok(201)
	f.routes["GET /fleet/v1/rollouts"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"rollouts":[`+rolloutAnswer+`]}`)
	}
	f.routes["GET /fleet/v1/rollouts/web@.service"] = ok(200)
	for _, a := range []string{"pause", "resume", "abort"} {
		f.routes["POST /fleet/v1/rollouts/web@.service/"+a] = ok(200)
	}
	f.routes["POST /fleet/v1/rollouts/web@.service/undo"] = ok(201)
	f.routes["GET /fleet/v1/units/web@.service/history"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"revisions":[{"revision":1,"hash":"aaaaaaa1","time":"2026-01-02T03:04:05Z","user":"local"},`+
			`{"revision":2,"hash":"bbbbbbb2","time":"2026-01-02T03:05:05Z","current":true}]}`)
	}
	ctx := context.Background()
	opts := []*UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/web v2"}}
	r, err := c.StartRollout(ctx, "web@.service", opts, Gates(2, 10*time.Second, 5*time.Minute, true))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Rollout{Rollout: rollout.Rollout{
		Spec: rollout.Spec{Unit: "web@.service", FromHash: "aaaaaaa1", FromRevision: 1, ToHash: "bbbbbbb2", ToRevision: 2,
			MaxParallel: 2, MinHealthyTime: 10 * time.Second, HealthyDeadline: 5 * time.Minute, User: "admin"},
		Phase: rollout.PhaseRunning,
		Targets: []rollout.Target{{Name: "web@1.service", Status: rollout.TargetUpdating, Started: created},
			{Name: "web@2.service", Status: rollout.TargetPending}},
		Created: created, Updated: created,
	}, Progress: "0/2 updated, 1 in progress, waiting for health"}
	if !reflect.DeepEqual(*r, want) {
		t.Fatalf("decoded\n %+v\nwant %+v", *r, want)
	}
	list, err := c.Rollouts(ctx)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Fatalf("Rollouts: %+v %v", list, err)
	}
	if _, err := c.Rollout(ctx, "web@.service"); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []func(context.Context, string) (*Rollout, error){c.PauseRollout, c.ResumeRollout, c.AbortRollout} {
		if _, err := fn(ctx, "web@.service"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.UndoRollout(ctx, "web@.service", 0, RolloutGates{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UndoRollout(ctx, "web@.service", 1, RolloutGates{AutoRevert: true}); err != nil {
		t.Fatal(err)
	}
	revs, err := c.History(ctx, "web@.service")
	wantRevs := []Revision{{Revision: 1, Hash: "aaaaaaa1", Time: created, User: "local"},
		{Revision: 2, Hash: "bbbbbbb2", Time: created.Add(time.Minute), Current: true}}
	if err != nil || !reflect.DeepEqual(revs, wantRevs) {
		t.Fatalf("History: %+v %v", revs, err)
	}
	wantReqs := []string{
		"POST /fleet/v1/rollouts?alt=json",
		"GET /fleet/v1/rollouts?alt=json",
		"GET /fleet/v1/rollouts/web@.service?alt=json",
		"POST /fleet/v1/rollouts/web@.service/pause?alt=json",
		"POST /fleet/v1/rollouts/web@.service/resume?alt=json",
		"POST /fleet/v1/rollouts/web@.service/abort?alt=json",
		"POST /fleet/v1/rollouts/web@.service/undo?alt=json",
		"POST /fleet/v1/rollouts/web@.service/undo?alt=json",
		"GET /fleet/v1/units/web@.service/history?alt=json",
	}
	if !reflect.DeepEqual(f.reqs, wantReqs) {
		t.Fatalf("requests\n %q\nwant %q", f.reqs, wantReqs)
	}
	wantBodies := map[int]string{
		0: `{"unit":"web@.service","options":[{"section":"Service","name":"ExecStart","value":"/bin/web v2"}],"maxParallel":2,"minHealthyTime":"10s","healthyDeadline":"5m0s","autoRevert":true}`,
		3: "",
		6: `{}`,
		7: `{"toRevision":1,"autoRevert":true}`,
	}
	for i, b := range wantBodies {
		if f.bodies[i] != b {
			t.Errorf("body %d (%s) = %s, want %s", i, f.reqs[i], f.bodies[i], b)
		}
	}
	if f.ctypes[0] != "application/json" {
		t.Errorf("content type %q", f.ctypes[0])
	}
}

func TestRolloutErrors(t *testing.T) {
	f, c := newFake(t)
	f.routes["POST /fleet/v1/rollouts"] = func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 422, "web@.service updated to revision 3 (abc1234); no instances were rolled: none is launched")
	}
	f.routes["GET /fleet/v1/rollouts/x.service"] = func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 404, "no rollout of x.service")
	}
	f.routes["POST /fleet/v1/rollouts/x.service/pause"] = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(409)
	}
	ctx := context.Background()
	_, err := c.StartRollout(ctx, "web@.service", nil, RolloutGates{})
	if !IsCode(err, 422) || Message(err) != "web@.service updated to revision 3 (abc1234); no instances were rolled: none is launched" {
		t.Errorf("422: %v", err)
	}
	_, err = c.Rollout(ctx, "x.service")
	if !IsNotFound(err) || Message(err) != "no rollout of x.service" {
		t.Errorf("404: %v", err)
	}
	_, err = c.PauseRollout(ctx, "x.service")
	if !IsCode(err, 409) || Message(err) != "Conflict" {
		t.Errorf("409 without envelope: %v", err)
	}
	if Message(errors.New("plain")) != "plain" {
		t.Error("Message of a plain error")
	}
	if _, err := c.History(ctx, "nope.service"); !IsNotFound(err) {
		t.Errorf("history 404: %v", err)
	}
}
