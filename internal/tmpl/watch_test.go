package tmpl

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

// startWatch runs d.Watch until the test ends.
func startWatch(t *testing.T, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Watch(ctx); err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func TestWatch(t *testing.T) {
	cli := etcdtest.New(t)

	t.Run("re-renders after a change", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/w/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/w\"\n")
		d := f.daemon(Options{WaitMin: 50 * time.Millisecond, WaitMax: time.Second})
		startWatch(t, d)
		eventually(t, "first render", func() bool { return fileIs(dest, "server a v1\n") })
		f.put("/w/services/web/a", "v2")
		eventually(t, "v2", func() bool { return fileIs(dest, "server a v2\n") })
		f.put("/w/services/web/b", "v3")
		eventually(t, "b added", func() bool { return fileIs(dest, "server a v2\nserver b v3\n") })
		if _, err := cli.Delete(f.ctx(), "/w/services/web/a"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a deleted", func() bool { return fileIs(dest, "server b v3\n") })
	})

	t.Run("burst is coalesced and the last value wins", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/b/services/web/a", "start")
		dest, log := f.out("web.cfg"), f.out("reload.log")
		webResource(f, dest, "prefix = \"/b\"\nreload_cmd = \"echo reload >> "+log+"\"\n")
		d := f.daemon(Options{WaitMin: 50 * time.Millisecond, WaitMax: time.Second})
		startWatch(t, d)
		eventually(t, "first render", func() bool { return fileIs(dest, "server a start\n") })
		const puts = 200
		for i := 0; i < puts; i++ {
			f.put("/b/services/web/a", fmt.Sprintf("v%d", i))
		}
		final := fmt.Sprintf("server a v%d\n", puts-1)
		eventually(t, "last value", func() bool { return fileIs(dest, final) })
		st := d.Status()[0]
		t.Logf("%d puts → %d renders, %d changes, %d reloads", puts, st.Renders, st.Changes, lines(log))
		if st.Renders > puts/4 {
			t.Errorf("%d renders for %d puts: bursts are not coalesced", st.Renders, puts)
		}
		if lines(log) != int(st.Changes) || !st.OK {
			t.Errorf("reloads %d, changes %d, status %+v", lines(log), st.Changes, st)
		}
	})

	t.Run("no change missed between render and watch", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/nm/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/nm\"\n")
		d := f.daemon(Options{WaitMin: 10 * time.Millisecond, WaitMax: 100 * time.Millisecond})
		var once sync.Once
		d.afterRender = func(rev int64) {
			once.Do(func() {
				// The file reflects rev; this change lands before any watch exists.
				if !fileIs(dest, "server a v1\n") {
					t.Errorf("first render missing")
				}
				f.put("/nm/services/web/a", "v2")
			})
		}
		startWatch(t, d)
		eventually(t, "change made right after the first render", func() bool { return fileIs(dest, "server a v2\n") })
	})

	t.Run("compaction forces a full re-render", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/cp/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/cp\"\n")
		d := f.daemon(Options{WaitMin: 10 * time.Millisecond, WaitMax: 100 * time.Millisecond})
		var calls atomic.Int32
		d.afterRender = func(rev int64) {
			if calls.Add(1) != 1 {
				return
			}
			f.put("/cp/services/web/a", "v2")
			last := f.put("/cp/services/web/a", "v3")
			// The watch will start at rev+1, which is now compacted away.
			if _, err := cli.Compact(f.ctx(), last); err != nil {
				t.Errorf("compact: %v", err)
			}
		}
		startWatch(t, d)
		eventually(t, "re-render after compaction", func() bool { return fileIs(dest, "server a v3\n") })
		if calls.Load() < 2 {
			t.Errorf("no full re-render after the compacted watch (%d)", calls.Load())
		}
		f.put("/cp/services/web/a", "v4")
		eventually(t, "watching again", func() bool { return fileIs(dest, "server a v4\n") })
	})

	t.Run("resources re-render independently", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/i/one/x", "1")
		f.put("/i/two/x", "2")
		f.writeTemplate("t.tmpl", "{{range gets \"/*/x\"}}{{.Value}}{{end}}\n")
		f.writeResource("a.toml", "[template]\nsrc = \"t.tmpl\"\ndest = \""+f.out("one")+"\"\nprefix = \"/i\"\nkeys = [\"/one\"]\n")
		f.writeResource("b.toml", "[template]\nsrc = \"t.tmpl\"\ndest = \""+f.out("two")+"\"\nprefix = \"/i\"\nkeys = [\"/two\"]\n")
		d := f.daemon(Options{WaitMin: 10 * time.Millisecond, WaitMax: 100 * time.Millisecond})
		startWatch(t, d)
		eventually(t, "first renders", func() bool { return fileIs(f.out("one"), "1\n") && fileIs(f.out("two"), "2\n") })
		f.put("/i/one/x", "11")
		eventually(t, "one re-rendered", func() bool { return fileIs(f.out("one"), "11\n") })
		// A later change to two proves its watch is live; its render count
		// shows the change to one did not touch it.
		f.put("/i/two/x", "22")
		eventually(t, "two re-rendered", func() bool { return fileIs(f.out("two"), "22\n") })
		if st := d.Status(); st[1].Renders != 2 {
			t.Errorf("b.toml rendered %d times, want 2", st[1].Renders)
		}
	})

	t.Run("template error then recovery", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/tr/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/tr\"\n")
		f.writeTemplate("web.tmpl", "{{getv \"/services/web/b\"}}\n")
		d := f.daemon(Options{WaitMin: 10 * time.Millisecond, WaitMax: 100 * time.Millisecond})
		startWatch(t, d)
		eventually(t, "error reported", func() bool { st := d.Status()[0]; return st.Renders > 0 && !st.OK })
		f.put("/tr/services/web/b", "now here")
		eventually(t, "rendered once the key exists", func() bool { return fileIs(dest, "now here\n") })
		if st := d.Status()[0]; !st.OK || st.LastError == "" {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("poll mode", func(t *testing.T) {
		f := newFixture(t, cli)
		f.put("/p/services/web/a", "v1")
		dest := f.out("web.cfg")
		webResource(f, dest, "prefix = \"/p\"\n")
		d := f.daemon(Options{Interval: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Poll(ctx) }()
		eventually(t, "first poll", func() bool { return fileIs(dest, "server a v1\n") })
		f.put("/p/services/web/a", "v2")
		eventually(t, "next poll", func() bool { return fileIs(dest, "server a v2\n") })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Poll: %v", err)
		}
	})
}
