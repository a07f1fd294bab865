package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetd/fleet/internal/registry"
)

// inspectJSON builds a GET /containers/{id}/json answer as the engine
// writes it.
func inspectJSON(name, image string, env []string, labels map[string]string, ports map[string][]PortBinding) string {
	v := map[string]any{
		"Id":   "0123456789abcdef" + name,
		"Name": "/" + name,
		"Config": map[string]any{
			"Image": image, "Env": env, "Labels": labels,
			"ExposedPorts": map[string]any{},
		},
		"State":           map[string]any{"Status": "running", "Running": true, "Paused": false, "Pid": 42},
		"NetworkSettings": map[string]any{"Ports": ports, "IPAddress": "172.17.0.2"},
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEndpoints(t *testing.T) {
	bind := func(hostPort string) []PortBinding {
		return []PortBinding{{HostIP: "0.0.0.0", HostPort: hostPort}, {HostIP: "::", HostPort: hostPort}}
	}
	tests := []struct {
		name string
		json string
		want []registry.Endpoint
	}{
		{
			name: "image base name",
			json: inspectJSON("web1", "registry.example.com:5000/team/nginx:1.25", nil, nil, map[string][]PortBinding{"80/tcp": bind("32768")}),
			want: []registry.Endpoint{{Name: "nginx", Instance: "web1", Port: 80, HostPort: 32768}},
		},
		{
			name: "unpublished ports are skipped",
			json: inspectJSON("w", "redis", nil, nil, map[string][]PortBinding{"6379/tcp": nil, "80/tcp": bind("8080")}),
			want: []registry.Endpoint{{Name: "redis", Instance: "w", Port: 80, HostPort: 8080}},
		},
		{
			name: "several ports get -port",
			json: inspectJSON("app", "example/app@sha256:abcd", nil, nil, map[string][]PortBinding{"443/tcp": bind("8443"), "80/tcp": bind("8080")}),
			want: []registry.Endpoint{
				{Name: "app-80", Instance: "app", Port: 80, HostPort: 8080},
				{Name: "app-443", Instance: "app", Port: 443, HostPort: 8443},
			},
		},
		{
			name: "SERVICE_NAME from env, tags",
			json: inspectJSON("c", "x", []string{"PATH=/bin", "SERVICE_NAME=front", "SERVICE_TAGS=a, b,a"}, nil, map[string][]PortBinding{"80/tcp": bind("1080")}),
			want: []registry.Endpoint{{Name: "front", Instance: "c", Port: 80, HostPort: 1080, Tags: []string{"a", "b"}}},
		},
		{
			name: "labels override env; per-port name keeps no suffix",
			json: inspectJSON("c", "x", []string{"SERVICE_NAME=envname"}, map[string]string{"SERVICE_NAME": "labelname", "SERVICE_443_NAME": "tls", "SERVICE_443_TAGS": "secure"},
				map[string][]PortBinding{"80/tcp": bind("1080"), "443/tcp": bind("1443")}),
			want: []registry.Endpoint{
				{Name: "labelname-80", Instance: "c", Port: 80, HostPort: 1080},
				{Name: "tls", Instance: "c", Port: 443, HostPort: 1443, Tags: []string{"secure"}},
			},
		},
		{
			name: "SERVICE_IGNORE",
			json: inspectJSON("c", "x", []string{"SERVICE_IGNORE=1"}, nil, map[string][]PortBinding{"80/tcp": bind("1080")}),
		},
		{
			name: "SERVICE_IGNORE label",
			json: inspectJSON("c", "x", nil, map[string]string{"SERVICE_IGNORE": "true"}, map[string][]PortBinding{"80/tcp": bind("1080")}),
		},
		{
			name: "per-port ignore",
			json: inspectJSON("c", "x", []string{"SERVICE_80_IGNORE=yes"}, nil, map[string][]PortBinding{"80/tcp": bind("1080"), "81/tcp": bind("1081")}),
			want: []registry.Endpoint{{Name: "x-81", Instance: "c", Port: 81, HostPort: 1081}},
		},
		{
			name: "udp and loopback",
			json: inspectJSON("dns", "coredns/coredns", nil, nil, map[string][]PortBinding{
				"53/udp":   bind("5353"),
				"9153/tcp": {{HostIP: "127.0.0.1", HostPort: "9153"}},
			}),
			want: []registry.Endpoint{{Name: "coredns", Instance: "dns:udp", Port: 53, HostPort: 5353}},
		},
		{
			name: "name sanitized",
			json: inspectJSON("c", "x", []string{"SERVICE_NAME=my service/v2"}, nil, map[string][]PortBinding{"80/tcp": bind("1080")}),
			want: []registry.Endpoint{{Name: "my-service-v2", Instance: "c", Port: 80, HostPort: 1080}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Container
			if err := json.Unmarshal([]byte(tt.json), &c); err != nil {
				t.Fatal(err)
			}
			got := Endpoints(c)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	var stopped Container
	_ = json.Unmarshal([]byte(inspectJSON("c", "x", nil, nil, map[string][]PortBinding{"80/tcp": bind("1")})), &stopped)
	stopped.State.Running = false
	if eps := Endpoints(stopped); len(eps) != 0 {
		t.Errorf("stopped container registered: %v", eps)
	}
}

func TestImageBase(t *testing.T) {
	for in, want := range map[string]string{
		"nginx": "nginx", "nginx:1.25": "nginx", "library/nginx": "nginx",
		"localhost:5000/a/b:tag": "b", "quay.io/x/y@sha256:00": "y", "localhost:5000/plain": "plain",
	} {
		if got := ImageBase(in); got != want {
			t.Errorf("ImageBase(%q) = %q, want %q", in, got, want)
		}
	}
}

// sink records the endpoint sets it receives.
type sink struct {
	mu      sync.Mutex
	last    []registry.Endpoint
	n       int
	changed chan struct{} // closed (and replaced) at each set
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) set(eps []registry.Endpoint) {
	s.mu.Lock()
	s.last, s.n = eps, s.n+1
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// await waits until the last set received satisfies cond.
func (s *sink) await(t *testing.T, what string, cond func([]registry.Endpoint) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		ok, last, changed := s.n > 0 && cond(s.last), s.last, s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; last: %+v", what, last)
		}
	}
}

// A fake engine on a unix socket: list + inspect + an events stream the
// test feeds.
func TestWatcherAgainstFakeEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	containers := map[string]string{
		"aaa": inspectJSON("one", "web", nil, nil, map[string][]PortBinding{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "1001"}}}),
	}
	events := make(chan string, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var list []map[string]string
		for id := range containers {
			list = append(list, map[string]string{"Id": id})
		}
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c, ok := containers[r.PathValue("id")]
		if !ok {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		fmt.Fprint(w, c)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Query().Get("filters"), `"container"`) {
			t.Errorf("events without a container filter: %s", r.URL.RawQuery)
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-events:
				fmt.Fprintln(w, ev)
				w.(http.Flusher).Flush()
			}
		}
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	s := newSink()
	w := New(Config{Socket: sock, Sink: s.set})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	s.await(t, "resync", func(eps []registry.Endpoint) bool {
		return len(eps) == 1 && eps[0].Name == "web" && eps[0].HostPort == 1001
	})
	mu.Lock()
	containers["bbb"] = inspectJSON("two", "api", nil, nil, map[string][]PortBinding{"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "1002"}}})
	mu.Unlock()
	events <- `{"Type":"container","Action":"start","Actor":{"ID":"bbb","Attributes":{"name":"two"}},"id":"bbb","status":"start"}`
	s.await(t, "start event", func(eps []registry.Endpoint) bool { return len(eps) == 2 })
	events <- `{"Type":"container","Action":"die","Actor":{"ID":"aaa"},"id":"aaa","status":"die"}`
	s.await(t, "die event", func(eps []registry.Endpoint) bool {
		return len(eps) == 1 && eps[0].Name == "api" && eps[0].Instance == "two"
	})
}

// TestRealDocker runs a tiny container on the real engine and checks that
// its endpoint is published in etcd and removed after docker rm -f.
func TestRealDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	w := New(Config{})
	pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := w.Ping(pctx)
	pcancel()
	if err != nil {
		t.Skipf("no Docker engine at %s: %v", DefaultSocket, err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skipf("no docker CLI to build the test image: %v", err)
	}
	tag := fmt.Sprintf("fleet-registry-test-%d", time.Now().UnixNano())
	img := buildImage(t, tag)

	cli := newEtcd(t)
	s := newSink()
	reg := newRegistry(t, cli)
	w = New(Config{Sink: func(eps []registry.Endpoint) { s.set(eps); reg.SetExternal("docker", eps) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	out, err := exec.Command("docker", "run", "-d", "--name", tag, "-p", "8080", "-e", "SERVICE_NAME="+tag, img).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", tag).Run() })
	out, err = exec.Command("docker", "port", tag, "8080/tcp").CombinedOutput()
	if err != nil {
		t.Fatalf("docker port: %v\n%s", err, out)
	}
	first := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	_, hostPort, _ := net.SplitHostPort(strings.TrimSpace(first))
	key := "/services/" + tag + "/m1:" + tag + ":8080"
	awaitKey(t, cli, key, "127.0.0.1:"+hostPort)

	if out, err := exec.Command("docker", "rm", "-f", tag).CombinedOutput(); err != nil {
		t.Fatalf("docker rm: %v\n%s", err, out)
	}
	awaitKey(t, cli, key, "")
}

// buildImage builds a FROM scratch image holding a static HTTP server.
func buildImage(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	_ = http.ListenAndServe(":8080", nil)
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "srv", "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY srv /srv\nEXPOSE 8080\nENTRYPOINT [\"/srv\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "build", "-q", "-t", tag, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// retryLog records when the watcher reports a failed attempt, and the
// delay it announces before the next one.
type retryLog struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	in    []time.Duration
}

func (l *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *retryLog) WithGroup(string) slog.Handler            { return l }
func (l *retryLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "not followed; retrying") {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, r.Time.Sub(l.start))
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "in" {
			l.in = append(l.in, a.Value.Duration())
		}
		return true
	})
	return nil
}

// Without an engine, Run retries after 1 s, then doubles the delay up to
// 30 s, and returns as soon as its context ends (fake time: no socket is
// ever dialled, the socket file does not exist).
func TestRunBacksOffWithoutEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &retryLog{start: time.Now()}
		w := New(Config{Socket: filepath.Join(t.TempDir(), "absent.sock"), Logger: slog.New(l)})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(125 * time.Second)
		synctest.Wait()
		l.mu.Lock()
		at, in := slices.Clone(l.at), slices.Clone(l.in)
		l.mu.Unlock()
		wantAt := []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second,
			31 * time.Second, 61 * time.Second, 91 * time.Second, 121 * time.Second}
		if !slices.Equal(at, wantAt) {
			t.Errorf("attempts failed at %v, want %v", at, wantAt)
		}
		// The first failure is reported once (info); the next ones give
		// the delay before the next attempt (debug).
		wantIn := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
			30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
		if !slices.Equal(in, wantIn) {
			t.Errorf("announced delays %v, want %v", in, wantIn)
		}
		stopped := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if d := time.Since(stopped); d != 0 {
			t.Errorf("Run returned %v after its context ended", d)
		}
	})
}
