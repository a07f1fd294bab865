package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lbLoad sends requests through balancers from several goroutines (with
// and without keep-alive) and records who answered and what failed.
type lbLoad struct {
	mu       sync.Mutex
	total    int
	failed   int
	byTarget map[string]*targetStats
	byName   map[string]int
	last     map[string]time.Time // last answer of each instance
	seq      []answer             // every answer, in order of arrival
	failures []string             // the first failures, for the report
}

type targetStats struct{ total, failed int }

type answer struct {
	at   time.Time
	name string // "" for a failure
}

func newLBLoad() *lbLoad {
	return &lbLoad{byTarget: map[string]*targetStats{}, byName: map[string]int{}, last: map[string]time.Time{}}
}

func (l *lbLoad) record(target, name string, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.byTarget[target]
	if ts == nil {
		ts = &targetStats{}
		l.byTarget[target] = ts
	}
	l.total++
	ts.total++
	if err != nil {
		l.failed++
		ts.failed++
		if len(l.failures) < 20 {
			l.failures = append(l.failures, fmt.Sprintf("%s %s: %v", now.Format("15:04:05.000"), target, err))
		}
		l.seq = append(l.seq, answer{at: now})
		return
	}
	l.byName[name]++
	l.last[name] = now
	l.seq = append(l.seq, answer{at: now, name: name})
}

// run sends requests to url until ctx ends; keepAlive picks the client.
// POSTs are not idempotent: no transport retries them once sent.
func (l *lbLoad) run(ctx context.Context, target, method, url string, keepAlive bool, pause time.Duration) {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("ping")
		}
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), method, url, body)
		resp, err := hc.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
			}
			l.record(target, strings.TrimSpace(string(body)), err)
		} else {
			l.record(target, "", err)
		}
		time.Sleep(pause)
	}
}

// since returns the answers since t: count per instance and failures.
func (l *lbLoad) since(t time.Time) (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearchFunc(l.seq, t, func(a answer, t time.Time) int { return a.at.Compare(t) })
	names, fails := map[string]int{}, 0
	for _, a := range l.seq[i:] {
		if a.name == "" {
			fails++
		} else {
			names[a.name]++
		}
	}
	return names, fails
}

func (l *lbLoad) lastOf(name string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[name]
}

func (l *lbLoad) failedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

func (l *lbLoad) report(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var targets []string
	for name, ts := range l.byTarget {
		targets = append(targets, fmt.Sprintf("%s %d/%d failed", name, ts.failed, ts.total))
	}
	slices.Sort(targets)
	t.Logf("requests: %d, failed: %d (%s); answers per instance: %v", l.total, l.failed, strings.Join(targets, ", "), l.byName)
	for _, f := range l.failures {
		t.Logf("  failure: %s", f)
	}
}

// kappaName is the answer of instance i.
func kappaName(i int) string { return fmt.Sprintf("kappa-test@%d.service", i) }

// awaitRotation waits until the answers since a moment name exactly the
// instances in want (at least 10 answers each) and returns that moment.
func awaitRotation(t *testing.T, l *lbLoad, what string, want ...int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		from := time.Now()
		time.Sleep(time.Second)
		names, _ := l.since(from)
		ok := len(names) == len(want)
		for _, i := range want {
			if names[kappaName(i)] < 10 {
				ok = false
			}
		}
		if ok {
			t.Logf("%s: answers over 1s: %v", what, names)
			return
		}
	}
	names, _ := l.since(time.Now().Add(-time.Second))
	t.Fatalf("timed out waiting for %s; answers over the last second: %v", what, names)
}

// awaitGone waits until instance i has not answered for a second (with
// other instances answering) and returns the time of its last answer.
func awaitGone(t *testing.T, l *lbLoad, i int) time.Time {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		last := l.lastOf(kappaName(i))
		if time.Since(last) > time.Second {
			if names, _ := l.since(last); len(names) > 0 {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s still answers through the balancer", kappaName(i))
	return time.Time{}
}

// startLB runs `fleetd lb` as a subprocess and waits until it answers.
func startLB(t *testing.T, etcdURL, tokenFile string) (url string, log *syncWriter) {
	t.Helper()
	addr := freePort(t)
	status := freePort(t)
	cmd := exec.Command(fleetdBin, "lb", "--listen", addr, "--service", "kappa-test",
		"--etcd-servers", etcdURL, "--cluster-token-file", tokenFile, "--status-addr", status, "--debug")
	log, done := startFleetdProcess(t, cmd, "fleetd lb", nil)
	url = "http://" + addr + "/"
	awaitHTTP(t, url, done)
	return url, log
}

// awaitHTTP waits until url answers 200.
func awaitHTTP(t *testing.T, url string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("%s: the server exited", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status + " " + string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200: %s", url, last)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestLoadBalancerStory is seed 004's docker-discover part with fleetd lb:
// requests rotate over kappa-test@1..3; stopping @2 takes it out of the
// rotation without a failed request; starting it brings it back; a failing
// health check and a machine killed with SIGKILL take endpoints out too.
// fleetd lb runs twice: as a subprocess, and as a global fleet unit on
// every machine (listening on the machine's FLEET_PUBLIC_IP), the role
// docker-discover had in the seed.
func TestLoadBalancerStory(t *testing.T) {
	s := newKappaStory(t)
	c := s.c
	c.MustFleetctl("start", "--no-block", s.unitPath(1), s.unitPath(2), s.unitPath(3))
	c.AwaitActive(60*time.Second, kappaName(1), kappaName(2), kappaName(3))
	s.awaitEndpoints("3 kappa-test endpoints", func(eps map[string]string) bool { return len(eps) == 3 })

	lbURL, _ := startLB(t, c.EtcdURL, c.TokenFile)

	// The global unit: one balancer per machine on <public ip>:port.
	_, port, _ := net.SplitHostPort(freePort(t))
	writeUnit(t, s.dir, "kappa-lb.service", fmt.Sprintf(`[Unit]
Description=fleetd lb for kappa-test (docker-discover's role)
[Service]
ExecStart=%s lb --listen ${FLEET_PUBLIC_IP}:%s --service kappa-test --etcd-servers %s --cluster-token-file %s
[X-Fleet]
Global=true
`, fleetdBin, port, c.EtcdURL, c.TokenFile))
	c.MustFleetctl("start", "--no-block", s.dir+"/kappa-lb.service")
	unitURL := "http://127.0.0.1:" + port + "/" // machine 0's balancer
	awaitHTTP(t, unitURL, nil)

	load := newLBLoad()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, g := range []struct {
		target, method, url string
		keepAlive           bool
		pause               time.Duration
	}{
		{"lb GET keep-alive", "GET", lbURL, true, 2 * time.Millisecond},
		{"lb GET keep-alive", "GET", lbURL, true, 2 * time.Millisecond},
		{"lb POST keep-alive", "POST", lbURL, true, 2 * time.Millisecond},
		{"lb POST keep-alive", "POST", lbURL, true, 2 * time.Millisecond},
		{"lb GET close", "GET", lbURL, false, 10 * time.Millisecond},
		{"lb POST close", "POST", lbURL, false, 10 * time.Millisecond},
		{"unit-lb GET keep-alive", "GET", unitURL, true, 5 * time.Millisecond},
		{"unit-lb POST close", "POST", unitURL, false, 10 * time.Millisecond},
	} {
		wg.Go(func() { load.run(ctx, g.target, g.method, g.url, g.keepAlive, g.pause) })
	}
	stopLoad := sync.OnceFunc(func() { stop(); wg.Wait() })
	t.Cleanup(func() {
		stopLoad()
		load.report(t)
		// On a busy machine etcd can stall for longer than agent_ttl:
		// every lease lapses and every unit is stopped. Say so, as
		// failures then come from that and not from what was tested.
		for _, m := range c.Machines {
			if n := strings.Count(m.Log(), "machine lease lost"); n > 0 {
				t.Logf("note: machine %d lost its lease %d times during the test (etcd unresponsive for longer than agent_ttl)", m.Index, n)
			}
		}
	})

	awaitRotation(t, load, "rotation over 1, 2 and 3", 1, 2, 3)

	// fleetctl stop: out of the rotation without a failed request;
	// fleetctl start: back. Three rounds, for the races.
	for round := 1; round <= 3; round++ {
		failedBefore := load.failedCount()
		start := time.Now()
		c.MustFleetctl("stop", "kappa-test@2.service")
		stopped := time.Now()
		last := awaitGone(t, load, 2)
		t.Logf("round %d: fleetctl stop kappa-test@2.service took %v; its last answer came %v after the stop began (%v after fleetctl returned)",
			round, stopped.Sub(start).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond), last.Sub(stopped).Round(time.Millisecond))
		awaitRotation(t, load, "rotation over 1 and 3 after stop", 1, 3)
		if n := load.failedCount() - failedBefore; n != 0 {
			t.Errorf("round %d: %d requests failed around fleetctl stop", round, n)
		}

		start = time.Now()
		c.MustFleetctl("start", "kappa-test@2.service")
		awaitRotation(t, load, "rotation over 1, 2 and 3 after start", 1, 2, 3)
		t.Logf("round %d: kappa-test@2 back in the rotation %v after fleetctl start", round, time.Since(start).Round(100*time.Millisecond))
	}

	// A failing health check removes the endpoint; passing restores it.
	failedBefore := load.failedCount()
	if err := os.WriteFile(s.unhealthyFile(3), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	last := awaitGone(t, load, 3)
	t.Logf("health check of kappa-test@3 fails: its last answer came %v after /health began to fail", last.Sub(start).Round(time.Millisecond))
	awaitRotation(t, load, "rotation over 1 and 2 while @3 is unhealthy", 1, 2)
	if err := os.Remove(s.unhealthyFile(3)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	awaitRotation(t, load, "rotation over 1, 2 and 3 after @3 is healthy", 1, 2, 3)
	t.Logf("kappa-test@3 back %v after its health check passes again", time.Since(start).Round(100*time.Millisecond))
	if n := load.failedCount() - failedBefore; n != 0 {
		t.Errorf("%d requests failed around the health check flip", n)
	}

	// kill -9 of a machine's fleetd: its endpoints leave with its lease.
	where := c.AwaitActive(30*time.Second, kappaName(1), kappaName(2), kappaName(3))
	victim, gone := -1, 0
	for i := 1; i <= 3; i++ {
		if m := c.MachineIndex(where[kappaName(i)]); m > 0 { // machine 0 holds etcd
			victim, gone = m, i
			break
		}
	}
	if victim < 0 {
		t.Fatalf("no kappa unit outside machine 0: %v", where)
	}
	failedBefore = load.failedCount()
	killed := time.Now()
	c.Kill(victim)
	ip := fmt.Sprintf("127.0.0.%d:", victim+1)
	s.awaitEndpoints(fmt.Sprintf("endpoints of machine %d gone", victim), func(eps map[string]string) bool {
		for _, v := range eps {
			if strings.HasPrefix(v, ip) {
				return false
			}
		}
		return len(eps) == 2
	})
	keysGone := time.Now()
	failedAtKeys := load.failedCount()
	lastGone := awaitGone(t, load, gone)
	var rest []int
	for i := 1; i <= 3; i++ {
		if i != gone {
			rest = append(rest, i)
		}
	}
	awaitRotation(t, load, fmt.Sprintf("rotation over %v after machine %d died", rest, victim), rest...)
	afterKeys := load.failedCount() - failedAtKeys
	t.Logf("kill -9 of machine %d at %s (it ran %s): keys gone %v after the kill; its last answer through a balancer came %v after the kill; failed requests: %d between kill and key removal, %d after",
		victim, killed.Format("15:04:05.000"), kappaName(gone), keysGone.Sub(killed).Round(100*time.Millisecond), lastGone.Sub(killed).Round(time.Millisecond),
		failedAtKeys-failedBefore, afterKeys)
	if afterKeys != 0 {
		t.Errorf("%d requests failed after the dead machine's endpoints were removed", afterKeys)
	}

	stopLoad()
	if n := load.failedCount() - (failedAtKeys - failedBefore); n != 0 {
		t.Errorf("%d requests failed outside the window between the kill and the key removal", n)
	}
}

// startFleetdProcess starts cmd (a fleetd subcommand) in its own process
// group with its output captured, and stops it (SIGTERM, then SIGKILL after
// 10 s) when the test ends, logging its output and calling onFail if the
// test failed. done closes when the process exits.
func startFleetdProcess(t *testing.T, cmd *exec.Cmd, name string, onFail func()) (log *syncWriter, done chan struct{}) {
	t.Helper()
	log = &syncWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("=== %s log:\n%s", name, log.String())
			if onFail != nil {
				onFail()
			}
		}
	})
	return log, done
}
