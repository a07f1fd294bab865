package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

type env struct {
	t     *testing.T
	cli   *clientv3.Client
	lease atomic.Int64
	reg   *Registry
	logs  *logSink
}

func grant(t *testing.T, cli *clientv3.Client, ttl int64) etcdkv.LeaseID {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
		}
	}()
	return etcdkv.LeaseID(l.ID)
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, cli: etcdtest.New(t), logs: &logSink{t: t, changed: make(chan struct{})}}
	e.lease.Store(int64(grant(t, e.cli, 30)))
	cfg := Config{
		Client: etcdkv.New(e.cli), MachineID: "m1", PublicIP: "127.0.0.1", Hostname: "host1",
		Lease:          func() etcdkv.LeaseID { return etcdkv.LeaseID(e.lease.Load()) },
		Logger:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ResyncInterval: time.Hour,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.reg = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// logSink passes the registry's log to t and lets a test wait for a line.
type logSink struct {
	t       *testing.T
	mu      sync.Mutex
	text    strings.Builder
	changed chan struct{} // closed (and replaced) at each write
}

func (l *logSink) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	l.mu.Lock()
	l.text.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return len(p), nil
}

// await waits until the log holds substr.
func (l *logSink) await(substr string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		found, changed := strings.Contains(l.text.String(), substr), l.changed
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			l.t.Fatalf("no log line with %q within %v", substr, timeout)
		}
	}
}

// get returns the value of key ("" if absent) and its lease.
func (e *env) get(key string) (string, etcdkv.LeaseID) {
	e.t.Helper()
	v, l, _ := e.getRev(key)
	return v, l
}

// getRev is get with the store's revision at the read.
func (e *env) getRev(key string) (string, etcdkv.LeaseID, int64) {
	e.t.Helper()
	resp, err := e.cli.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, resp.Header.Revision
	}
	return string(resp.Kvs[0].Value), etcdkv.LeaseID(resp.Kvs[0].Lease), resp.Header.Revision
}

// follow reads key, then watches it from the next revision, calling seen
// with its value ("" = absent) first and after every change, until seen
// returns true (follow returns true) or d passes (false). No change is
// missed between the read and the watch.
func (e *env) follow(key string, d time.Duration, seen func(string) bool) bool {
	e.t.Helper()
	got, _, rev := e.getRev(key)
	if seen(got) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for resp := range e.cli.Watch(ctx, key, clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			if ctx.Err() == nil {
				e.t.Fatalf("watch %s: %v", key, err)
			}
			break
		}
		for _, ev := range resp.Events {
			got = string(ev.Kv.Value)
			if ev.Type == clientv3.EventTypeDelete {
				got = ""
			}
			if seen(got) {
				return true
			}
		}
	}
	return false
}

// await waits until key has value want ("" = absent).
func (e *env) await(what, key, want string, timeout time.Duration) {
	e.t.Helper()
	last := ""
	if !e.follow(key, timeout, func(v string) bool { last = v; return v == want }) {
		e.t.Fatalf("%s: %s = %q after %v, want %q", what, key, last, timeout, want)
	}
}

// stays checks that key keeps value want for d: every change to it in
// that time is seen (a watch, not samples), and none may change the value.
func (e *env) stays(what, key, want string, d time.Duration) {
	e.t.Helper()
	bad := ""
	if e.follow(key, d, func(v string) bool { bad = v; return v != want }) {
		e.t.Fatalf("%s: %s = %q, want %q", what, key, bad, want)
	}
}

// settled returns once the registry's writer is free, i.e. the sync in
// progress (if any) has finished: Deregister of a unit that publishes
// nothing takes the writer and removes nothing.
func (e *env) settled() {
	e.t.Helper()
	if err := e.reg.Deregister(context.Background(), "settle-barrier.service"); err != nil {
		e.t.Fatal(err)
	}
}

func unitOpts(t *testing.T, file string) []fleet.UnitOption {
	t.Helper()
	opts, err := unitfile.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func TestPublishWithoutCheckAndDeregister(t *testing.T) {
	e := newEnv(t, nil)
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=80%i\n[X-Service]\nName=web-admin\nPort=900%i\n")
	t0 := time.Now()
	e.reg.SetUnits([]Unit{{Name: "web@1.service", Options: opts, Active: true, Since: t0}})
	key := "/services/web/m1:web@1.service:801"
	e.await("published", key, "127.0.0.1:801", 10*time.Second)
	e.await("second endpoint", "/services/web-admin/m1:web@1.service:9001", "127.0.0.1:9001", 10*time.Second)
	if _, l := e.get(key); l != etcdkv.LeaseID(e.lease.Load()) {
		t.Errorf("key on lease %x, want %x", l, e.lease.Load())
	}

	// Deregister is synchronous.
	if err := e.reg.Deregister(context.Background(), "web@1.service"); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.get(key); v != "" {
		t.Fatalf("after Deregister: %s = %q", key, v)
	}
	// Still active since the same time (stopping): stays away.
	e.reg.SetUnits([]Unit{{Name: "web@1.service", Options: opts, Active: true, Since: t0}})
	e.stays("deregistered while stopping", key, "", 500*time.Millisecond)
	// Stopped, then active again: back.
	e.reg.SetUnits([]Unit{{Name: "web@1.service", Options: opts, Active: false, Since: t0.Add(time.Second)}})
	e.stays("inactive", key, "", 200*time.Millisecond)
	e.reg.SetUnits([]Unit{{Name: "web@1.service", Options: opts, Active: true, Since: t0.Add(2 * time.Second)}})
	e.await("active again", key, "127.0.0.1:801", 10*time.Second)

	// A restart seen only as a new activation time also brings it back.
	if err := e.reg.Deregister(context.Background(), "web@1.service"); err != nil {
		t.Fatal(err)
	}
	e.reg.SetUnits([]Unit{{Name: "web@1.service", Options: opts, Active: true, Since: t0.Add(3 * time.Second)}})
	e.await("new activation", key, "127.0.0.1:801", 10*time.Second)

	// Unloaded (gone from the set): removed.
	e.reg.SetUnits(nil)
	e.await("unloaded", key, "", 10*time.Second)
	e.await("unloaded", "/services/web-admin/m1:web@1.service:9001", "", 10*time.Second)
}

// flakyServer is a real HTTP and TCP endpoint whose health can be toggled.
type flakyServer struct {
	port    int
	healthy atomic.Bool
}

func newFlakyServer(t *testing.T) *flakyServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyServer{port: l.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || !f.healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return f
}

func TestHTTPCheck(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlakyServer(t)
	opts := unitOpts(t, fmt.Sprintf("[Service]\nExecStart=/x\n[X-Service]\nName=api\nPort=%d\nCheckHTTP=/health\nCheckInterval=100ms\nCheckTimeout=100ms\nCheckThreshold=2\n", f.port))
	e.reg.SetUnits([]Unit{{Name: "api.service", Options: opts, Active: true, Since: time.Now()}})
	key := fmt.Sprintf("/services/api/m1:api.service:%d", f.port)
	want := fmt.Sprintf("127.0.0.1:%d", f.port)
	e.stays("failing from the start", key, "", time.Second)
	f.healthy.Store(true)
	e.await("first pass", key, want, 5*time.Second)
	f.healthy.Store(false)
	e.await("failing", key, "", 5*time.Second)
	f.healthy.Store(true)
	e.await("passing again", key, want, 5*time.Second)
}

func TestTCPAndExecChecks(t *testing.T) {
	e := newEnv(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	flag := filepath.Join(t.TempDir(), "ok")
	opts := unitOpts(t, fmt.Sprintf("[Service]\nExecStart=/x\n"+
		"[X-Service]\nName=tcp\nPort=%d\nCheckTCP=yes\nCheckInterval=100ms\nCheckThreshold=1\n"+
		"[X-Service]\nName=exec\nPort=%d\nCheckExec=test -f %s && test \"$SERVICE_PORT\" = %d\nCheckInterval=100ms\nCheckThreshold=1\n",
		port, port, flag, port))
	e.reg.SetUnits([]Unit{{Name: "db.service", Options: opts, Active: true, Since: time.Now()}})
	tcpKey := fmt.Sprintf("/services/tcp/m1:db.service:%d", port)
	execKey := fmt.Sprintf("/services/exec/m1:db.service:%d", port)
	want := fmt.Sprintf("127.0.0.1:%d", port)
	e.await("tcp check passes", tcpKey, want, 5*time.Second)
	e.stays("exec check fails", execKey, "", 500*time.Millisecond)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.await("exec check passes", execKey, want, 5*time.Second)
	l.Close()
	e.await("tcp check fails", tcpKey, "", 5*time.Second)
	os.Remove(flag)
	e.await("exec check fails", execKey, "", 5*time.Second)
}

func TestLeaseChangeAndRevoke(t *testing.T) {
	e := newEnv(t, nil)
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	e.reg.SetExternal("docker", []Endpoint{{Name: "redis", Instance: "cache", Port: 6379, HostPort: 32768}})
	key := "/services/web/m1:web.service:8080"
	dkey := "/services/redis/m1:cache:6379"
	e.await("published", key, "127.0.0.1:8080", 10*time.Second)
	e.await("external published", dkey, "127.0.0.1:32768", 10*time.Second)

	// The lease is revoked (the machine is declared dead): keys vanish.
	old := etcdkv.LeaseID(e.lease.Load())
	if _, err := e.cli.Revoke(context.Background(), clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	e.await("revoked", key, "", 5*time.Second)
	e.await("revoked", dkey, "", 5*time.Second)

	// A new lease: everything is written again on it.
	nl := grant(t, e.cli, 30)
	e.lease.Store(int64(nl))
	e.await("republished", key, "127.0.0.1:8080", 10*time.Second)
	e.await("republished", dkey, "127.0.0.1:32768", 10*time.Second)
	if _, l := e.get(key); l != nl {
		t.Errorf("key on lease %x, want the new %x", l, nl)
	}
	e.reg.SetExternal("docker", nil)
	e.await("external gone", dkey, "", 10*time.Second)
}

func TestResyncRepairsAndRespectsOthers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ResyncInterval = 200 * time.Millisecond })
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	key := "/services/web/m1:web.service:8080"
	e.await("published", key, "127.0.0.1:8080", 10*time.Second)

	// Deleted behind our back: written again.
	if _, err := e.cli.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	e.await("repaired", key, "127.0.0.1:8080", 10*time.Second)

	// A stray key on our lease goes; another machine's key stays.
	stray := "/services/web/m1:gone.service:1"
	if _, err := e.cli.Put(context.Background(), stray, "127.0.0.1:1", clientv3.WithLease(clientv3.LeaseID(e.lease.Load()))); err != nil {
		t.Fatal(err)
	}
	e.await("stray removed", stray, "", 10*time.Second)
	other := grant(t, e.cli, 30)
	if _, err := e.cli.Put(context.Background(), key, "10.9.9.9:8080", clientv3.WithLease(clientv3.LeaseID(other))); err != nil {
		t.Fatal(err)
	}
	// Our resync takes the key back (it is ours by name)...
	e.await("taken back", key, "127.0.0.1:8080", 10*time.Second)
	// ...but Deregister does not delete a key someone else rewrote.
	if _, err := e.cli.Put(context.Background(), key, "10.9.9.9:8080", clientv3.WithLease(clientv3.LeaseID(other))); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Deregister(context.Background(), "web.service"); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.get(key); v != "10.9.9.9:8080" {
		t.Errorf("Deregister deleted another machine's key: %q", v)
	}
}

func TestInvalidServicesAndNoPublicIP(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicIP = "" })
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	bad := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=80%i\n")
	e.reg.SetUnits([]Unit{
		{Name: "web.service", Options: opts, Active: true, Since: time.Now()},
		{Name: "web@99999.service", Options: bad, Active: true, Since: time.Now()},
	})
	// Both are seen (the warnings), and the sync that saw them wrote
	// nothing.
	e.logs.await("unit declares invalid services", 10*time.Second)
	e.logs.await("no public IP configured", 10*time.Second)
	e.settled()
	resp, err := e.cli.Get(context.Background(), "/services/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("published without a public IP: %v", resp.Kvs)
	}
}

func TestDeregisterAll(t *testing.T) {
	e := newEnv(t, nil)
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	key := "/services/web/m1:web.service:8080"
	e.await("published", key, "127.0.0.1:8080", 10*time.Second)
	if err := e.reg.DeregisterAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.get(key); v != "" {
		t.Fatalf("after DeregisterAll: %q", v)
	}
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	e.stays("closed", key, "", 300*time.Millisecond)
}

// Two fleetd on one host (same hostname, different machine IDs and public
// IPs) publish the same unit and the same container under distinct keys,
// and their resyncs do not overwrite each other.
func TestKeysUseMachineIDNotHostname(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ResyncInterval = 100 * time.Millisecond })
	lease2 := grant(t, e.cli, 30)
	r2 := New(Config{
		Client: etcdkv.New(e.cli), MachineID: "m2", PublicIP: "127.0.0.2", Hostname: "host1",
		Lease:          func() etcdkv.LeaseID { return lease2 },
		ResyncInterval: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	for _, r := range []*Registry{e.reg, r2} {
		r.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
		r.SetExternal("docker", []Endpoint{{Name: "redis", Instance: "cache", Port: 6379, HostPort: 32768}})
	}
	if got, want := r2.Key("web", "web.service", 8080), "/services/web/m2:web.service:8080"; got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	e.await("m1 unit", "/services/web/m1:web.service:8080", "127.0.0.1:8080", 10*time.Second)
	e.await("m2 unit", "/services/web/m2:web.service:8080", "127.0.0.2:8080", 10*time.Second)
	e.await("m1 container", "/services/redis/m1:cache:6379", "127.0.0.1:32768", 10*time.Second)
	e.await("m2 container", "/services/redis/m2:cache:6379", "127.0.0.2:32768", 10*time.Second)
	// Several resyncs of both: no key changes hands.
	e.stays("m1 unit", "/services/web/m1:web.service:8080", "127.0.0.1:8080", 500*time.Millisecond)
	e.stays("m2 unit", "/services/web/m2:web.service:8080", "127.0.0.2:8080", 100*time.Millisecond)
	resp, err := e.cli.Get(context.Background(), "/services/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 4 {
		t.Errorf("%d keys under /services/, want 4: %v", len(resp.Kvs), resp.Kvs)
	}
}

// Without a machine ID there is no key to write: nothing is published.
func TestNoMachineIDPublishesNothing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MachineID = "" })
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=8080\n")
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	// The sync that saw the unit warned and wrote nothing.
	e.logs.await("no machine ID configured", 10*time.Second)
	e.settled()
	resp, err := e.cli.Get(context.Background(), "/services/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d keys published without a machine ID", resp.Count)
	}
}

// OnCheck hears each change of an endpoint's check result, including the
// failures of a check that never passed (a new version that is not
// healthy), and not the same result twice.
func TestOnCheckReportsChanges(t *testing.T) {
	var mu sync.Mutex
	var heard []string
	e := newEnv(t, func(c *Config) {
		c.OnCheck = func(_ context.Context, unit string, svc fleet.Service, err error) {
			mu.Lock()
			defer mu.Unlock()
			msg := "pass"
			if err != nil {
				msg = "fail: " + err.Error()
			}
			heard = append(heard, fmt.Sprintf("%s %s:%d %s", unit, svc.Name, svc.Port, msg))
		}
	})
	f := newFlakyServer(t)
	opts := unitOpts(t, fmt.Sprintf("[Service]\nExecStart=/x\n[X-Service]\nName=api\nPort=%d\nCheckHTTP=/health\nCheckInterval=50ms\nCheckTimeout=50ms\n", f.port))
	e.reg.SetUnits([]Unit{{Name: "api.service", Options: opts, Active: true, Since: time.Now()}})
	key := fmt.Sprintf("/services/api/m1:api.service:%d", f.port)
	e.stays("failing from the start", key, "", 500*time.Millisecond)
	f.healthy.Store(true)
	e.await("first pass", key, fmt.Sprintf("127.0.0.1:%d", f.port), 5*time.Second)
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		fmt.Sprintf("api.service api:%d fail: GET http://127.0.0.1:%d/health: 503 Service Unavailable", f.port, f.port),
		fmt.Sprintf("api.service api:%d pass", f.port),
	}
	if !slices.Equal(heard, want) {
		t.Errorf("heard %q\nwant %q", heard, want)
	}
}
