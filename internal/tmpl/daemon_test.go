package tmpl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

// webResource writes a resource rendering /services/web/* to dest, with
// extra TOML lines appended.
func webResource(f *fixture, dest, extra string) {
	f.writeTemplate("web.tmpl", "{{range gets \"/services/web/*\"}}server {{base .Key}} {{.Value}}\n{{end}}")
	f.writeResource("web.toml", "[template]\nsrc = \"web.tmpl\"\ndest = \""+dest+"\"\nkeys = [\"/services/web\"]\n"+extra)
}

func TestOnetimeRenderAndPipeline(t *testing.T) {
	cli := etcdtest.New(t)

	t.Run("render", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/services/web/a", "10.0.0.1:80")
		f.put("/services/web/b", "10.0.0.2:80")
		f.put("/services/webapp/x", "not mine") // sibling prefix, not under /services/web
		dest := f.out("web.cfg")
		webResource(f, dest, "")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		want := "server a 10.0.0.1:80\nserver b 10.0.0.2:80\n"
		if got := f.read(dest); got != want {
			t.Errorf("got %q want %q", got, want)
		}
		st := d.Status()[0]
		if !st.OK || st.Changes != 1 || st.Renders != 1 || st.Revision == 0 || st.LastChange.IsZero() {
			t.Errorf("status %+v", st)
		}
		// New file gets 0644 by default; no staged file is left behind.
		if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v", fi.Mode())
		}
		assertNoStageFiles(t, f.outDir)
	})

	t.Run("unchanged content: no rewrite, no reload", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/u/services/web/a", "1")
		dest, log := f.out("web.cfg"), f.out("reload.log")
		webResource(f, dest, "prefix = \"/u\"\nreload_cmd = \"echo reload >> "+log+"\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		fi1, _ := os.Stat(dest)
		ino1 := fi1.Sys().(*syscall.Stat_t).Ino
		f.put("/u/services/other", "x") // a change elsewhere
		for i := 0; i < 3; i++ {
			if err := d.Once(f.ctx()); err != nil {
				t.Fatal(err)
			}
		}
		fi2, _ := os.Stat(dest)
		if ino2 := fi2.Sys().(*syscall.Stat_t).Ino; ino2 != ino1 || !fi2.ModTime().Equal(fi1.ModTime()) {
			t.Errorf("dest was rewritten (inode %d→%d)", ino1, ino2)
		}
		if n := lines(log); n != 1 {
			t.Errorf("reload ran %d times, want 1", n)
		}
		if st := d.Status()[0]; st.Renders != 4 || st.Changes != 1 {
			t.Errorf("renders %d changes %d, want 4 and 1", st.Renders, st.Changes)
		}
	})

	t.Run("reload runs after replace", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/r/services/web/a", "v1")
		dest, log := f.out("web.cfg"), f.out("reload.log")
		// The reload sees the new file: it appends dest's content to the log.
		webResource(f, dest, "prefix = \"/r\"\nreload_cmd = \"cat "+dest+" >> "+log+"; echo reloaded\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		f.put("/r/services/web/a", "v2")
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		if got, want := f.read(log), "server a v1\nserver a v2\n"; got != want {
			t.Errorf("reload log %q want %q", got, want)
		}
		if st := d.Status()[0]; st.ReloadOutput != "reloaded" {
			t.Errorf("reload output %q", st.ReloadOutput)
		}
	})

	t.Run("reload failure is reported", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/rf/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/rf\"\nreload_cmd = \"echo cannot reload >&2; exit 3\"\n")
		d := f.daemon(Options{})
		err := d.Once(f.ctx())
		if err == nil || !strings.Contains(err.Error(), "reload_cmd failed") || !strings.Contains(err.Error(), "cannot reload") {
			t.Fatalf("error %v", err)
		}
		if got := f.read(dest); got != "server a v1\n" {
			t.Errorf("dest %q (should be replaced even though reload failed)", got)
		}
		if st := d.Status()[0]; st.OK || st.ReloadOutput != "cannot reload" || !strings.Contains(st.LastError, "exit status 3") {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("check_cmd failure keeps old file", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/c/services/web/a", "good")
		dest, log := f.out("web.cfg"), f.out("reload.log")
		webResource(f, dest, "prefix = \"/c\"\ncheck_cmd = \"grep -q good {{.src}} || { echo 'bad config in' {{.src}}; exit 1; }\"\nreload_cmd = \"echo reload >> "+log+"\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		f.put("/c/services/web/a", "evil")
		err := d.Once(f.ctx())
		if err == nil || !strings.Contains(err.Error(), "check_cmd failed") || !strings.Contains(err.Error(), "bad config in") {
			t.Fatalf("error %v", err)
		}
		if got := f.read(dest); got != "server a good\n" {
			t.Errorf("dest %q, want the old content", got)
		}
		if n := lines(log); n != 1 {
			t.Errorf("reload ran %d times, want 1", n)
		}
		st := d.Status()[0]
		if st.OK || !strings.Contains(st.LastError, "check_cmd failed") || !strings.Contains(st.CheckOutput, "bad config in "+f.outDir) {
			t.Errorf("status %+v", st)
		}
		assertNoStageFiles(t, f.outDir)
	})

	t.Run("keep-stage-file keeps a failed stage", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/k/services/web/a", "x")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/k\"\ncheck_cmd = \"false\"\n")
		d := f.daemon(Options{KeepStageFile: true})
		err := d.Once(f.ctx())
		if err == nil || !strings.Contains(err.Error(), "staged file kept at") {
			t.Fatalf("error %v", err)
		}
		stages, _ := filepath.Glob(filepath.Join(f.outDir, ".web.cfg.fleetd-stage-*"))
		if len(stages) != 1 || f.read(stages[0]) != "server a x\n" {
			t.Errorf("staged files %v", stages)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("dest exists: %v", err)
		}
	})

	t.Run("template error keeps old file and names the template", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/te/services/web/a", "1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/te\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		f.writeTemplate("web.tmpl", "ok line\n{{getv \"/services/web/missing\"}}\n")
		err := d.Once(f.ctx())
		if err == nil || !strings.Contains(err.Error(), "web.tmpl:2:") || !strings.Contains(err.Error(), "key does not exist") {
			t.Fatalf("error %v, want it to name web.tmpl:2", err)
		}
		// A parse error is reported with its line too.
		f.writeTemplate("web.tmpl", "a\nb\n{{if}}\n")
		err = d.Once(f.ctx())
		if err == nil || !strings.Contains(err.Error(), "web.tmpl:3:") {
			t.Fatalf("error %v, want it to name web.tmpl:3", err)
		}
		if got := f.read(dest); got != "server a 1\n" {
			t.Errorf("dest %q, want the old content", got)
		}
		if st := d.Status()[0]; st.OK || !strings.Contains(st.LastError, "web.tmpl:3:") {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("mode and owner", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/m/services/web/a", "1")
		dest := f.out("web.cfg")
		uid, gid := os.Getuid(), os.Getgid()
		if uid == 0 {
			uid, gid = 65534, 65534
		}
		webResource(f, dest, "prefix = \"/m\"\nmode = \"0600\"\nowner = \""+itoa(uid)+"\"\ngroup = \""+itoa(gid)+"\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o600 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("mode %v uid %d gid %d; want 0600 %d %d", fi.Mode(), st.Uid, st.Gid, uid, gid)
		}
		// A mode change alone (same content) is applied.
		if err := os.Chmod(dest, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v after drift, want 0600", fi.Mode())
		}
		// Without mode, an existing file's mode is kept.
		f2 := newFixture(t, cli)
		dest2 := f2.out("web.cfg")
		if err := os.WriteFile(dest2, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dest2, 0o640); err != nil {
			t.Fatal(err)
		}
		webResource(f2, dest2, "prefix = \"/m\"\n")
		if err := f2.daemon(Options{}).Once(f2.ctx()); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(dest2); fi.Mode().Perm() != 0o640 || f2.read(dest2) != "server a 1\n" {
			t.Errorf("mode %v, want the old 0640", fi.Mode())
		}
	})

	t.Run("noop and sync-only", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/n/services/web/a", "1")
		dest, log := f.out("web.cfg"), f.out("cmd.log")
		webResource(f, dest, "prefix = \"/n\"\ncheck_cmd = \"echo check >> "+log+"\"\nreload_cmd = \"echo reload >> "+log+"\"\n")
		if err := f.daemon(Options{Noop: true}).Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("noop wrote dest: %v", err)
		}
		assertNoStageFiles(t, f.outDir)
		if err := f.daemon(Options{SyncOnly: true}).Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		if f.read(dest) != "server a 1\n" || lines(log) != 0 {
			t.Errorf("sync-only: dest %q, %d command runs", f.read(dest), lines(log))
		}
	})

	t.Run("global and resource prefix", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/g/p/services/web/a", "gp")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"p\"\n")
		if err := f.daemon(Options{Prefix: "/g"}).Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		if got := f.read(dest); got != "server a gp\n" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("status handler", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/s/services/web/a", "1")
		webResource(f, f.out("web.cfg"), "prefix = \"/s\"\nreload_cmd = \"echo hi\"\n")
		d := f.daemon(Options{})
		if err := d.Once(f.ctx()); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(d.StatusHandler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Resources []map[string]any `json:"resources"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if len(body.Resources) != 1 {
			t.Fatalf("body %+v", body)
		}
		r := body.Resources[0]
		if r["name"] != "web.toml" || r["ok"] != true || r["reload_output"] != "hi" || r["last_render"] == nil || r["renders"] != 1.0 {
			t.Errorf("status %v", r)
		}
		if resp, err := http.Get(srv.URL + "/nope"); err != nil || resp.StatusCode != 404 {
			t.Errorf("GET /nope: %v %v", resp.StatusCode, err)
		}
	})
}

func assertNoStageFiles(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*fleetd-stage-*"))
	if len(m) > 0 {
		t.Errorf("staged files left behind: %v", m)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
