package tmpl

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// fixture is a confdir, an output dir and an etcd client for one test:
// cli sets keys up, kv (the seam over it) is what the daemon reads.
type fixture struct {
	t       *testing.T
	cli     *clientv3.Client
	kv      *etcdkv.Client
	confDir string
	outDir  string
}

func newFixture(t *testing.T, cli *clientv3.Client) *fixture {
	t.Helper()
	if cli == nil {
		cli = etcdtest.New(t)
	}
	f := &fixture{t: t, cli: cli, kv: etcdkv.New(cli), confDir: t.TempDir(), outDir: t.TempDir()}
	for _, d := range []string{"conf.d", "templates"} {
		if err := os.MkdirAll(filepath.Join(f.confDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) ctx() context.Context {
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	f.t.Cleanup(cancel)
	return ctx
}

func (f *fixture) put(k, v string) int64 {
	f.t.Helper()
	resp, err := f.cli.Put(f.ctx(), k, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.Header.Revision
}

func (f *fixture) writeTemplate(name, text string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.confDir, "templates", name), []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) writeResource(name, toml string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.confDir, "conf.d", name), []byte(toml), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// out returns the path of a file in the output dir.
func (f *fixture) out(name string) string { return filepath.Join(f.outDir, name) }

// daemon loads the confdir. opts.ConfDir, Logger and Env default sensibly.
func (f *fixture) daemon(opts Options) *Daemon {
	f.t.Helper()
	opts.ConfDir = f.confDir
	if opts.Logger == nil {
		opts.Logger = testLogger(f.t)
	}
	if opts.Env == nil {
		opts.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	d, err := New(f.kv, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) read(path string) string {
	f.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// testLogger logs to t (at debug level when -v).
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond until it holds or a generous deadline passes;
// then it fails, saying what it waited for and, with detail, what it saw
// last.
func eventually(t *testing.T, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting for " + what
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileIs reports whether path currently holds want.
func fileIs(path, want string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(b) == want
}

// lines counts the lines of a file (0 if missing).
func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}
