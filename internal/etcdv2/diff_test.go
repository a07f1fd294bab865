package etcdv2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRealEtcd starts Debian's etcd 3.4 with the v2 API and returns its
// client URL.
func startRealEtcd(t *testing.T, bin string) string {
	t.Helper()
	cport, pport := freePort(t), freePort(t)
	curl := fmt.Sprintf("http://127.0.0.1:%d", cport)
	purl := fmt.Sprintf("http://127.0.0.1:%d", pport)
	var log bytes.Buffer
	cmd := exec.Command(bin, "--enable-v2", "--name", "default", "--data-dir", t.TempDir(),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "default="+purl)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := http.Get(curl + "/health")
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if strings.Contains(string(b), `"true"`) {
				return curl
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd 3.4 did not become healthy: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// diffStep is one etcdctl command, one HTTP request (curl), a pause, or
// a watch that a set from another goroutine ends.
type diffStep struct {
	ctl   []string
	curl  string // "METHOD path"
	sleep time.Duration
	watch []string // watch args; then set /w/key watched
}

var (
	digitsRE = regexp.MustCompile(`\d+`)
	stampRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z`)
)

func normalize(s, endpoint string) string {
	s = strings.ReplaceAll(s, endpoint, "ENDPOINT")
	s = stampRE.ReplaceAllString(s, "TIME")
	return strings.TrimSpace(digitsRE.ReplaceAllString(s, "N"))
}

func runCtl(ctl, endpoint string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctl, append([]string{"--endpoints", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=2")
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		out = append(out, err.Error()...)
	}
	return string(out), code
}

func runStep(t *testing.T, ctl, endpoint string, s diffStep) string {
	switch {
	case s.sleep > 0:
		time.Sleep(s.sleep)
		return ""
	case s.ctl != nil:
		out, code := runCtl(ctl, endpoint, s.ctl...)
		return fmt.Sprintf("exit %d: %s", code, normalize(out, endpoint))
	case s.curl != "":
		method, p, _ := strings.Cut(s.curl, " ")
		req, _ := http.NewRequest(method, endpoint+p, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		var hs []string
		for _, h := range []string{"Content-Type", "X-Etcd-Index", "X-Raft-Index", "X-Raft-Term"} {
			if r.Header.Get(h) != "" {
				hs = append(hs, h)
			}
		}
		return fmt.Sprintf("%d %v %s", r.StatusCode, hs, normalize(string(b), endpoint))
	case s.watch != nil:
		type result struct {
			out  string
			code int
		}
		done := make(chan result, 1)
		go func() {
			out, code := runCtl(ctl, endpoint, s.watch...)
			done <- result{out, code}
		}()
		time.Sleep(1500 * time.Millisecond)
		if out, code := runCtl(ctl, endpoint, "set", "/w/key", "watched"); code != 0 {
			t.Errorf("set for the watch: %d %s", code, out)
		}
		select {
		case r := <-done:
			return fmt.Sprintf("exit %d: %s", r.code, normalize(r.out, endpoint))
		case <-time.After(20 * time.Second):
			return "watch did not return"
		}
	}
	return ""
}

// TestDifferentialEtcdctl runs one etcdctl v2 command sequence against
// etcd 3.4's v2 API and against this package, and compares the outputs
// and exit codes with the numbers blanked.
func TestDifferentialEtcdctl(t *testing.T) {
	etcdBin, ctl := "/usr/bin/etcd", "/usr/bin/etcdctl"
	for _, b := range []string{etcdBin, ctl} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("differential test needs %s: %v", b, err)
		}
	}
	real := startRealEtcd(t, etcdBin)
	kv := etcdkv.New(etcdtest.New(t))
	srv := newV2Server(kv)
	defer srv.Close()

	steps := []diffStep{
		{ctl: []string{"mkdir", "/dir"}},
		{ctl: []string{"mkdir", "/dir"}},
		{ctl: []string{"set", "/dir/key", "hello"}},
		{ctl: []string{"get", "/dir/key"}},
		{ctl: []string{"mk", "/dir/key", "other"}},
		{ctl: []string{"mk", "/dir/new", "other"}},
		{ctl: []string{"update", "/dir/key", "world"}},
		{ctl: []string{"set", "/dir/sub/deep", "value"}},
		{ctl: []string{"ls", "--recursive", "--sort", "/"}},
		{ctl: []string{"ls", "--sort", "-p", "/dir"}},
		{curl: "GET /v2/keys/?recursive=true&sorted=true"},
		{curl: "GET /v2/keys/dir?recursive=true&sorted=true"},
		{curl: "GET /v2/keys/dir?sorted=true"},
		{curl: "PUT /v2/keys/dir/key/x?value=1"},
		{curl: "PUT /v2/keys/dir?value=1"},
		{curl: "PUT /v2/keys/dir/key?ttl=abc&value=1"},
		{curl: "GET /v2/keys/dir?wait=true&waitIndex=abc"},
		{curl: "PUT /v2/keys/dir/key?prevExist=maybe&value=1"},
		{curl: "DELETE /v2/keys/dir?dir=true"},
		{curl: "PUT /v2/keys/?value=1"},
		{ctl: []string{"set", "--swap-with-value", "world", "/dir/key", "swapped"}},
		{ctl: []string{"set", "--swap-with-value", "nomatch", "/dir/key", "x"}},
		{ctl: []string{"get", "/dir"}},
		{ctl: []string{"-o", "extended", "get", "/dir/key"}},
		{ctl: []string{"-o", "json", "get", "/dir/key"}},
		{ctl: []string{"rm", "/dir/key"}},
		{ctl: []string{"rmdir", "/dir"}},
		{ctl: []string{"rm", "/dir"}},
		{ctl: []string{"rm", "--recursive", "/dir"}},
		{ctl: []string{"get", "/dir"}},
		{ctl: []string{"mkdir", "/d3"}},
		{ctl: []string{"updatedir", "--ttl", "100", "/d3"}},
		{ctl: []string{"rmdir", "/d3"}},
		{ctl: []string{"update", "/missing", "x"}},
		{ctl: []string{"rm", "/missing"}},
		{ctl: []string{"set", "--ttl", "1", "/ttlkey", "v"}},
		{ctl: []string{"get", "/ttlkey"}},
		{sleep: 3 * time.Second},
		{ctl: []string{"get", "/ttlkey"}},
		{watch: []string{"watch", "/w/key"}},
		{watch: []string{"watch", "--recursive", "/w"}},
		{ctl: []string{"rm", "--recursive", "/w"}},
		{ctl: []string{"ls", "--recursive", "--sort", "/"}},
	}
	var mismatches int
	for i, s := range steps {
		want := runStep(t, ctl, real, s)
		got := runStep(t, ctl, srv.URL, s)
		name := strings.Join(s.ctl, " ") + s.curl + strings.Join(s.watch, " ")
		if s.sleep > 0 {
			continue
		}
		if want != got {
			mismatches++
			t.Errorf("step %d %q:\netcd 3.4: %s\netcdv2:   %s", i, name, want, got)
		} else {
			t.Logf("step %d %q: match: %s", i, name, got)
		}
	}
	t.Logf("%d of %d steps match", len(steps)-1-mismatches, len(steps)-1)
}
