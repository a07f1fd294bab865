package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

// haproxyExample copies examples/haproxy into a temp confdir with every
// absolute path (destination, pidfile, admin socket) moved into dir.
func haproxyExample(t *testing.T, dir string) (confdir, cfg, pidfile, sock string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(file), "..", "examples", "haproxy")
	confdir = filepath.Join(dir, "confd")
	cfg = filepath.Join(dir, "haproxy.cfg")
	pidfile = filepath.Join(dir, "haproxy.pid")
	sock = filepath.Join(dir, "admin.sock")
	toml, err := os.ReadFile(filepath.Join(example, "conf.d", "haproxy.toml"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(example, "templates", "haproxy.cfg.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.NewReplacer(
		"/etc/haproxy/haproxy.cfg", cfg,
		"/run/haproxy.pid", pidfile,
		"/run/haproxy/admin.sock", sock,
	).Replace(string(toml))
	for _, p := range []string{"/etc/haproxy", "/run/haproxy"} {
		if strings.Contains(rewritten, p) {
			t.Fatalf("examples/haproxy/conf.d/haproxy.toml: a path under %s is left after rewriting:\n%s", p, rewritten)
		}
	}
	for _, d := range []string{"conf.d", "templates"} {
		if err := os.MkdirAll(filepath.Join(confdir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(confdir, "conf.d", "haproxy.toml"), []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confdir, "templates", "haproxy.cfg.tmpl"), tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	return confdir, cfg, pidfile, sock
}

// processesWith returns the pids of processes whose command line contains
// s (a unique temp path: only this test's haproxy processes match).
func processesWith(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		// Zombies keep their cmdline empty; skip exited ones anyway.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// kappaServer serves instance i's answer (kappaName(i)) on 127.0.0.1.
func kappaServer(t *testing.T, i int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(time.Millisecond)
		fmt.Fprintln(w, kappaName(i))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// TestHAProxyConfdReload runs the real haproxy under `fleetd confd --watch`
// with examples/haproxy: registrations come and go in etcd, each change
// re-renders haproxy.cfg and reloads haproxy seamlessly (-x socket -sf
// pid), while a request loop runs through haproxy.
func TestHAProxyConfdReload(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy); skipping the haproxy reload test:", err)
	}
	out, _ := exec.Command(haproxy, "-v").CombinedOutput()
	t.Logf("%s", strings.SplitN(string(out), "\n", 2)[0])

	_, eps := etcdtest.NewServer(t)
	cli := etcdtest.NewClient(t, eps)
	dir := t.TempDir()
	confdir, cfg, pidfile, sock := haproxyExample(t, dir)
	key := func(i int) string { return fmt.Sprintf("/services/kappa-test/host1:kappa-test@%d.service:80", i) }
	backends := map[int]string{}
	for i := 1; i <= 4; i++ {
		backends[i] = kappaServer(t, i)
	}
	ctx := context.Background()
	put := func(k, v string) {
		t.Helper()
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		put(key(i), backends[i])
	}
	put("/haproxy/default_service", "kappa-test")

	// Kill every haproxy this test started, by pid (the old ones after a
	// reload exit by themselves once their connections are done).
	t.Cleanup(func() {
		for _, pid := range processesWith(cfg) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	bind := freePort(t)
	status := freePort(t)
	env := append(os.Environ(),
		"PATH="+filepath.Dir(haproxy)+":"+os.Getenv("PATH"),
		"HAPROXY_HTTP_BIND="+bind,
		"HAPROXY_STATS_SOCKET="+sock,
	)
	confd := exec.Command(fleetdBin, "confd", "--watch", "--confdir", confdir,
		"--etcd-servers", strings.Join(eps, ","), "--status-addr", status)
	confd.Env = env
	_, done := startFleetdProcess(t, confd, "fleetd confd", func() {
		b, _ := os.ReadFile(cfg)
		t.Logf("=== %s:\n%s", cfg, b)
	})
	url := "http://" + bind + "/"
	awaitHTTP(t, url, done)

	load := newLBLoad()
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, g := range []struct {
		target, method string
		keepAlive      bool
		pause          time.Duration
	}{
		{"haproxy GET close", "GET", false, 5 * time.Millisecond},
		{"haproxy GET close", "GET", false, 5 * time.Millisecond},
		{"haproxy POST close", "POST", false, 5 * time.Millisecond},
		{"haproxy GET keep-alive", "GET", true, 2 * time.Millisecond},
		{"haproxy POST keep-alive", "POST", true, 2 * time.Millisecond},
	} {
		wg.Go(func() { load.run(lctx, g.target, g.method, url, g.keepAlive, g.pause) })
	}
	stopLoad := sync.OnceFunc(func() { stop(); wg.Wait() })
	t.Cleanup(func() { stopLoad(); load.report(t) })

	awaitRotation(t, load, "haproxy: rotation over 1, 2 and 3", 1, 2, 3)
	pids := map[string]bool{}
	notePid := func() {
		b, _ := os.ReadFile(pidfile)
		pids[strings.TrimSpace(string(b))] = true
	}
	notePid()

	// Each step changes the registrations: a re-render and a reload.
	steps := []struct {
		what string
		do   func()
		in   int // instance that joins (or 0)
		out  int // instance that leaves (or 0)
		want []int
	}{
		{"add kappa-test@4", func() { put(key(4), backends[4]) }, 4, 0, []int{1, 2, 3, 4}},
		{"remove kappa-test@2", func() { _, _ = cli.Delete(ctx, key(2)) }, 0, 2, []int{1, 3, 4}},
		{"add kappa-test@2 back", func() { put(key(2), backends[2]) }, 2, 0, []int{1, 2, 3, 4}},
		{"remove kappa-test@4", func() { _, _ = cli.Delete(ctx, key(4)) }, 0, 4, []int{1, 2, 3}},
	}
	for _, st := range steps {
		start := time.Now()
		st.do()
		switch {
		case st.in != 0:
			deadline := time.Now().Add(60 * time.Second)
			for load.lastOf(kappaName(st.in)).Before(start) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: no answer from it through haproxy", st.what)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: first answer through haproxy %v after the etcd put", st.what, load.lastOf(kappaName(st.in)).Sub(start).Round(time.Millisecond))
		case st.out != 0:
			last := awaitGone(t, load, st.out)
			t.Logf("%s: last answer through haproxy %v after the etcd delete", st.what, last.Sub(start).Round(time.Millisecond))
		}
		awaitRotation(t, load, "haproxy after "+st.what, st.want...)
		notePid()
	}
	stopLoad()

	// Reloads happened (a new pid each), and the old processes went away.
	t.Logf("haproxy pids seen in the pidfile: %d", len(pids))
	if len(pids) < len(steps)+1 {
		t.Errorf("haproxy was reloaded %d times for %d changes", len(pids)-1, len(steps))
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(processesWith(cfg)) != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := processesWith(cfg); len(n) != 1 {
		t.Errorf("haproxy processes left after the reloads: %v, want 1", n)
	}
	if b, err := os.ReadFile(cfg); err != nil || !strings.Contains(string(b), "server host1:kappa-test_3.service:80 "+backends[3]+" check") {
		t.Errorf("rendered %s (%v):\n%s", cfg, err, b)
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	for target, ts := range load.byTarget {
		t.Logf("%s: %d requests, %d failed", target, ts.total, ts.failed)
		if strings.HasSuffix(target, "close") && ts.failed != 0 {
			t.Errorf("%s: %d of %d requests failed across %d seamless reloads", target, ts.failed, ts.total, len(steps))
		}
	}
}
