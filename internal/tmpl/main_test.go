package tmpl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout (code 0) or stderr
	}{
		{"help", []string{"--help"}, 0, "--wait-min duration"},
		{"help single dash", []string{"-h"}, 0, "--onetime"},
		{"help confd style", []string{"-help"}, 0, "--onetime"},
		{"help beside a bad flag", []string{"--nope", "--help"}, 0, "Usage: fleetd confd"},
		{"unknown flag", []string{"--nope"}, 2, "unknown flag: --nope\nRun 'fleetd confd --help' for usage."},
		{"unknown flag single dash", []string{"-nope"}, 2, "unknown flag: --nope"},
		{"missing value", []string{"--confdir"}, 2, "flag needs an argument: --confdir"},
		{"bad value", []string{"-interval", "often"}, 2, `invalid argument "often" for "--interval"`},
		{"extra args", []string{"--onetime", "x"}, 2, "unexpected arguments"},
		{"cert without key", []string{"--onetime", "--etcd-certfile", "c.pem"}, 2, "--etcd-certfile and --etcd-keyfile go together"},
		{"wait-max below wait-min", []string{"--wait-min", "2s", "--wait-max", "1s"}, 2, "--wait-max must be at least --wait-min"},
		{"bad backend", []string{"--backend", "consul"}, 2, "not supported"},
		{"bad log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"poll without interval", []string{"--interval", "0"}, 2, "--interval must be positive"},
		{"missing confdir", []string{"--onetime", "--confdir", "/nonexistent/confd"}, 1, "/nonexistent/confd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tc.args, nil, &stdout, &stderr)
			out := stderr.String()
			if tc.code == 0 {
				out = stdout.String()
			}
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("code %d (want %d); output:\n%s\nwant it to contain %q", code, tc.code, out, tc.out)
			}
		})
	}
}

// TestMainHelpFlags: the help names every flag with two dashes, the etcd
// TLS, token and user flags among them with what they are for, and never
// shows a secret taken from the environment.
func TestMainHelpFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := []string{"FLEET_ETCD_PASSWORD=s3cret", "FLEET_ETCD_CAFILE=/ca.pem"}
	if code := Main(t.Context(), []string{"--help"}, env, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("code %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Usage: fleetd confd [flags]", "\nFlags:\n", "--confdir dir", "--onetime", "--watch", "--interval seconds",
		"--node URL", "--etcd-servers URLs", "--backend", "-h, --help",
		"--etcd-cafile file", "FLEET_ETCD_CAFILE", "--etcd-certfile file", "FLEET_ETCD_CERTFILE",
		"--etcd-keyfile file", "FLEET_ETCD_KEYFILE", "--cluster-token-file file", "FLEET_CLUSTER_TOKEN_FILE",
		"cluster-token file", "--etcd-username user", "FLEET_ETCD_USERNAME", "--etcd-password password",
		"FLEET_ETCD_PASSWORD", "--etcd-insecure", "-onetime -backend etcd",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "/ca.pem") {
		t.Errorf("help shows values of the environment:\n%s", out)
	}
	for _, line := range strings.Split(out[strings.Index(out, "\nFlags:\n"):], "\n")[2:] {
		if f := strings.TrimSpace(line); strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "--") && !strings.HasPrefix(f, "-h, --help") {
			t.Errorf("single-dash flag in help: %q", line)
		}
	}
}

func TestMainRuns(t *testing.T) {
	_, endpoints := etcdtest.NewServer(t)
	cli := etcdtest.NewClient(t, endpoints)
	env := []string{"FLEET_ETCD_SERVERS=" + strings.Join(endpoints, ","), "PATH=" + os.Getenv("PATH")}

	t.Run("onetime", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/mo/services/web/a", "1")
		dest := f.out("web.cfg")
		webResource(f, dest, "")
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), []string{"--onetime", "--confdir", f.confDir, "--prefix", "/mo"}, env, &stdout, &stderr); code != 0 {
			t.Fatalf("code %d: %s", code, stderr.String())
		}
		if got := f.read(dest); got != "server a 1\n" {
			t.Errorf("got %q", got)
		}
		// --node overrides the environment (which now points nowhere useful).
		f.put("/mo/services/web/a", "2")
		badEnv := []string{"FLEET_ETCD_SERVERS=http://127.0.0.1:1"}
		if code := Main(t.Context(), []string{"-onetime", "-confdir", f.confDir, "-prefix", "/mo", "-node", endpoints[0]}, badEnv, &stdout, &stderr); code != 0 {
			t.Fatalf("code %d: %s", code, stderr.String())
		}
		if got := f.read(dest); got != "server a 2\n" {
			t.Errorf("got %q", got)
		}
		// A template error makes --onetime fail.
		f.writeTemplate("web.tmpl", "{{getv \"/none\"}}")
		stderr.Reset()
		if code := Main(t.Context(), []string{"--onetime", "--confdir", f.confDir, "--prefix", "/mo"}, env, &stdout, &stderr); code != 1 {
			t.Fatalf("code %d, want 1: %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "web.tmpl:1:") {
			t.Errorf("stderr does not name the template: %s", stderr.String())
		}
	})

	t.Run("unknown key in a resource", func(t *testing.T) {
		f := newFixture(t, cli)
		f.writeResource("x.toml", "[template]\nsrc = \"a\"\ndest = \"/b\"\nkeys = [\"/\"]\nwatch = \"yes\"\n")
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), []string{"--onetime", "--confdir", f.confDir}, env, &stdout, &stderr); code != 1 {
			t.Fatalf("code %d", code)
		}
		if !strings.Contains(stderr.String(), `x.toml:5: unknown key "template.watch"`) {
			t.Errorf("stderr %s", stderr.String())
		}
	})

	t.Run("watch with status endpoint", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/mw/services/web/a", "1")
		dest := f.out("web.cfg")
		webResource(f, dest, "reload_cmd = \"echo reloaded\"\n")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var stdout bytes.Buffer
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"--watch", "--confdir", f.confDir, "--prefix", "/mw", "--status-addr", "127.0.0.1:0", "--wait-min", "10ms"}, env, &stdout, &stderr)
		}()
		eventually(t, "first render", func() bool { return fileIs(dest, "server a 1\n") })
		f.put("/mw/services/web/a", "2")
		eventually(t, "change", func() bool { return fileIs(dest, "server a 2\n") })

		url := regexp.MustCompile(`url=(http://\S+/status)`).FindStringSubmatch(stderr.String())
		if url == nil {
			t.Fatalf("no status url logged: %s", stderr.String())
		}
		// The status is updated once the render's commands ran, just
		// after the file changed: poll it.
		var body struct{ Resources []ResourceStatus }
		eventually(t, "status after the change", func() bool {
			resp, err := http.Get(url[1])
			if err != nil {
				t.Fatal(err)
			}
			body.Resources = nil
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return len(body.Resources) == 1 && body.Resources[0].Changes == 2 && body.Resources[0].ReloadOutput == "reloaded"
		}, func() string { return fmt.Sprintf("status %+v", body) })

		cancel()
		if code := <-done; code != 0 {
			t.Errorf("code %d: %s", code, stderr.String())
		}
	})
}
