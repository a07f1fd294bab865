package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFleet serves canned fleet /fleet/v1 wire answers and records requests.
type fakeFleet struct {
	mu     sync.Mutex
	reqs   []string // "METHOD path?query"
	bodies []string
	ctypes []string
	routes map[string]func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeFleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
	f.bodies = append(f.bodies, string(b))
	f.ctypes = append(f.ctypes, r.Header.Get("Content-Type"))
	h := f.routes[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	w.Header().Set("Server", "fleetd/test")
	if r.URL.Query().Get("alt") != "json" {
		writeErr(w, 400, "missing alt=json")
		return
	}
	if h == nil {
		writeErr(w, 404, "")
		return
	}
	h(w, r)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func writeRaw(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func newFake(t *testing.T) (*fakeFleet, *Client) {
	t.Helper()
	f := &fakeFleet{routes: map[string]func(http.ResponseWriter, *http.Request){}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+",http://127.0.0.1:1", Options{RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestUnitsFollowsPageTokens(t *testing.T) {
	f, c := newFake(t)
	// Three pages as fleet sends them with token_limit 2 and 4 units: the
	// last token leads to an empty {} page.
	pages := map[string]string{
		"":         `{"nextPageToken":"AgACAA==","units":[{"currentState":"inactive","desiredState":"loaded","machineID":"3d1219c7aaaa","name":"a.service","options":[{"name":"Description","section":"Unit","value":"A"}]},{"desiredState":"inactive","name":"b.service"}]}`,
		"AgACAA==": `{"nextPageToken":"AgADAA==","units":[{"name":"c.service"},{"name":"d.service"}]}`,
		"AgADAA==": `{}`,
	}
	f.routes["GET /fleet/v1/units"] = func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Query().Get("nextPageToken")]
		if !ok {
			writeErr(w, 400, "bad token")
			return
		}
		writeRaw(w, 200, body)
	}
	units, err := c.Units(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range units {
		names = append(names, u.Name)
	}
	if want := []string{"a.service", "b.service", "c.service", "d.service"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	a := units[0]
	if a.CurrentState != "inactive" || a.DesiredState != "loaded" || a.MachineID != "3d1219c7aaaa" ||
		len(a.Options) != 1 || *a.Options[0] != (UnitOption{Section: "Unit", Name: "Description", Value: "A"}) {
		t.Fatalf("unit a decoded as %+v", a)
	}
	wantReqs := []string{
		"GET /fleet/v1/units?alt=json",
		"GET /fleet/v1/units?alt=json&nextPageToken=AgACAA%3D%3D",
		"GET /fleet/v1/units?alt=json&nextPageToken=AgADAA%3D%3D",
	}
	if !reflect.DeepEqual(f.reqs, wantReqs) {
		t.Fatalf("requests = %q, want %q", f.reqs, wantReqs)
	}
}

func TestStatesAndMachinesPaging(t *testing.T) {
	f, c := newFake(t)
	f.routes["GET /fleet/v1/state"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("nextPageToken") == "" {
			writeRaw(w, 200, `{"nextPageToken":"ZAACAA==","states":[{"hash":"95b8215","machineID":"m1","name":"a.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}]}`)
			return
		}
		writeRaw(w, 200, `{"states":[{"name":"b.service","machineID":"m2"}]}`)
	}
	f.routes["GET /fleet/v1/machines"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("nextPageToken") == "" {
			writeRaw(w, 200, `{"machines":[{"id":"m1","metadata":{"region":"us"},"primaryIP":"10.0.0.1"}],"nextPageToken":"ZAACAA=="}`)
			return
		}
		writeRaw(w, 200, `{"machines":[{"id":"m2"}]}`)
	}
	states, err := c.UnitStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []UnitState{
		{Name: "a.service", Hash: "95b8215", MachineID: "m1", SystemdLoadState: "loaded", SystemdActiveState: "active", SystemdSubState: "running"},
		{Name: "b.service", MachineID: "m2"},
	}
	if !reflect.DeepEqual(states, want) {
		t.Fatalf("states = %+v", states)
	}
	ms, err := c.Machines(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].PrimaryIP != "10.0.0.1" || ms[0].Metadata["region"] != "us" || ms[1].ID != "m2" {
		t.Fatalf("machines = %+v", ms)
	}
	if _, err := c.UnitStatesFiltered(context.Background(), "a.service", "m1"); err != nil {
		t.Fatal(err)
	}
	if got := f.reqs[len(f.reqs)-2]; got != "GET /fleet/v1/state?alt=json&machineID=m1&unitName=a.service" {
		t.Fatalf("filtered request = %q", got)
	}
}

func TestRepeatedTokenStops(t *testing.T) {
	f, c := newFake(t)
	f.routes["GET /fleet/v1/units"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"units":[{"name":"a.service"}],"nextPageToken":"AgACAA=="}`)
	}
	if _, err := c.Units(context.Background()); err == nil || !strings.Contains(err.Error(), "repeated page token") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnitNotFoundAndErrors(t *testing.T) {
	f, c := newFake(t)
	f.routes["GET /fleet/v1/units/missing.service"] = func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 404, "unit does not exist")
	}
	f.routes["PUT /fleet/v1/units/web@.service"] = func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, 400, `cannot activate template "web@.service"`)
	}
	f.routes["DELETE /fleet/v1/units/x.service"] = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, "boom")
	}
	u, err := c.Unit(context.Background(), "missing.service")
	if u != nil || err != nil {
		t.Fatalf("Unit(missing) = %v, %v; want nil, nil", u, err)
	}
	err = c.SetUnitTargetState(context.Background(), "web@.service", "launched")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 400 || ae.Message != `cannot activate template "web@.service"` {
		t.Fatalf("err = %#v", err)
	}
	if err.Error() != `googleapi: Error 400: cannot activate template "web@.service"` {
		t.Fatalf("message = %q", err.Error())
	}
	err = c.DestroyUnit(context.Background(), "x.service")
	if !errors.As(err, &ae) || ae.Code != 500 || ae.Message != "boom" {
		t.Fatalf("non-envelope error = %#v", err)
	}
	if err := c.DestroyUnit(context.Background(), "nope.service"); !IsNotFound(err) {
		t.Fatalf("destroy missing: %v", err)
	}
}

func TestWriteBodies(t *testing.T) {
	f, c := newFake(t)
	ok := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	f.routes["PUT /fleet/v1/units/hello.service"] = ok(201)
	f.routes["PATCH /fleet/v1/machines"] = ok(204)
	ctx := context.Background()
	err := c.CreateUnit(ctx, &Unit{Name: "hello.service", Options: []*UnitOption{{Section: "Unit", Name: "Description", Value: "Hello World"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetUnitTargetState(ctx, "hello.service", "launched"); err != nil {
		t.Fatal(err)
	}
	ops := []MachineMetadataOp{MetadataAdd("m1", "rack", "r1"), MetadataRemove("m1", "old")}
	if err := c.PatchMachineMetadata(ctx, ops); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"name":"hello.service","options":[{"section":"Unit","name":"Description","value":"Hello World"}]}`,
		`{"name":"hello.service","desiredState":"launched"}`,
		`[{"op":"add","path":"/m1/metadata/rack","value":{"value":"r1"}},{"op":"remove","path":"/m1/metadata/old"}]`,
	}
	if !reflect.DeepEqual(f.bodies, want) {
		t.Fatalf("bodies:\n%s\nwant:\n%s", strings.Join(f.bodies, "\n"), strings.Join(want, "\n"))
	}
	for i, ct := range f.ctypes {
		if ct != "application/json" {
			t.Fatalf("request %d content-type %q", i, ct)
		}
	}
}

func TestExtensions(t *testing.T) {
	f, c := newFake(t)
	f.routes["GET /fleet/v1/reasons"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"reasons":[{"unit":"web@4.service","summary":"no machine can run web@4.service","perMachine":{"m1":"conflicts"}}]}`)
	}
	f.routes["GET /fleet/v1/reasons/web@4.service"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"unit":"web@4.service","summary":"no machine can run web@4.service"}`)
	}
	f.routes["GET /fleet/v1/status/g.service"] = func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 200, `{"statuses":[{"machineID":"m1","text":"● g.service\n"},{"machineID":"m2","error":"unreachable"}]}`)
	}
	f.routes["GET /fleet/v1/journal/g.service"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "line1\n"+r.URL.Query().Encode()+"\n")
	}
	ctx := context.Background()
	rs, err := c.Reasons(ctx)
	if err != nil || len(rs) != 1 || rs[0].PerMachine["m1"] != "conflicts" {
		t.Fatalf("Reasons = %+v, %v", rs, err)
	}
	r, err := c.Reason(ctx, "web@4.service")
	if err != nil || r == nil || r.Summary != "no machine can run web@4.service" {
		t.Fatalf("Reason = %+v, %v", r, err)
	}
	r, err = c.Reason(ctx, "placed.service")
	if r != nil || err != nil {
		t.Fatalf("Reason(placed) = %+v, %v", r, err)
	}
	st, err := c.Status(ctx, "g.service", "")
	if err != nil || len(st) != 2 || st[0].Text != "● g.service\n" || st[1].Error != "unreachable" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	var sb strings.Builder
	if err := c.Journal(ctx, "g.service", 10, false, "short", "m1", &sb); err != nil {
		t.Fatal(err)
	}
	if want := "line1\nalt=json&follow=false&lines=10&machineID=m1&output=short\n"; sb.String() != want {
		t.Fatalf("journal = %q", sb.String())
	}
}

func TestJournalFollowEndsWithContext(t *testing.T) {
	f, c := newFake(t)
	f.routes["GET /fleet/v1/journal/f.service"] = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.Journal(ctx, "f.service", 10, true, "", "", pw); pw.Close() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Journal after cancel: %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "fleet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skip("no unix sockets:", err)
	}
	f := &fakeFleet{routes: map[string]func(http.ResponseWriter, *http.Request){
		"GET /fleet/v1/machines": func(w http.ResponseWriter, r *http.Request) {
			writeRaw(w, 200, `{"machines":[{"id":"m1"}]}`)
		},
	}}
	srv := &http.Server{Handler: f}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := New("unix://"+sock, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Machines(context.Background())
	if err != nil || len(ms) != 1 {
		t.Fatalf("machines over unix socket: %+v, %v", ms, err)
	}
	if ua := f.reqs; len(ua) != 1 {
		t.Fatalf("reqs = %v", ua)
	}
}

func TestNewEndpoints(t *testing.T) {
	for _, tc := range []struct {
		endpoint, base, err string
	}{
		{"http://127.0.0.1:49153", "http://127.0.0.1:49153", ""},
		{"http://127.0.0.1:49153/", "http://127.0.0.1:49153", ""},
		{"https://fleet.example:8443,http://other:1", "https://fleet.example:8443", ""},
		{"unix:///var/run/fleet.sock", "http://domain-sock", ""},
		{"file:///var/run/fleet.sock", "http://domain-sock", ""},
		{"unix://var/run/fleet.sock", "", `unable to connect to host "var" with scheme "unix"`},
		{"127.0.0.1:49153", "", "URL scheme undefined"},
		{"/var/run/fleet.sock", "", "URL scheme undefined"},
		{"ftp://x", "", `unsupported URL scheme "ftp"`},
	} {
		c, err := New(tc.endpoint, Options{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("New(%q) err = %v, want %q", tc.endpoint, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.endpoint, err)
			continue
		}
		if c.Endpoint() != tc.base {
			t.Errorf("New(%q) base = %q, want %q", tc.endpoint, c.Endpoint(), tc.base)
		}
	}
}

func TestUserAgentAndTimeout(t *testing.T) {
	var ua string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ua = r.Header.Get("User-Agent")
		mu.Unlock()
		if r.URL.Path == "/fleet/v1/units" {
			time.Sleep(300 * time.Millisecond)
		}
		writeRaw(w, 200, `{}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{UserAgent: "fleetctl/test", RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Machines(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := ua
	mu.Unlock()
	if got != "fleetctl/test" {
		t.Fatalf("User-Agent = %q", got)
	}
	if _, err := c.Units(context.Background()); err == nil {
		t.Fatal("slow request did not time out")
	}
}

func TestCreateUnitWarnings(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		code    int
		want    []string
		wantErr bool
	}{
		{"one warning", []string{"x.service: Unknown key name 'ExecStrat' in section 'Service', ignoring."}, 201,
			[]string{"x.service: Unknown key name 'ExecStrat' in section 'Service', ignoring."}, false},
		{"several warnings in order", []string{"a", "b"}, 201, []string{"a", "b"}, false},
		{"none (also an older fleetd)", nil, 201, nil, false},
		{"refused", nil, 400, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(t)
			f.routes["PUT /fleet/v1/units/x.service"] = func(w http.ResponseWriter, r *http.Request) {
				for _, h := range tt.headers {
					w.Header().Add(WarningHeader, h)
				}
				if tt.code >= 400 {
					writeErr(w, tt.code, "bad unit")
					return
				}
				w.WriteHeader(tt.code)
			}
			got, err := c.CreateUnitWarnings(context.Background(), &Unit{Name: "x.service",
				Options: []*UnitOption{{Section: "Service", Name: "ExecStrat", Value: "/bin/true"}}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("warnings = %q, want %q", got, tt.want)
			}
		})
	}
}
