package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, opts Options) *Journal {
	t.Helper()
	if opts.Hostname == "" {
		opts.Hostname = "host"
	}
	j, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func lines(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Line
	}
	return out
}

func TestWriterSplitsLines(t *testing.T) {
	j := open(t, Options{})
	w := j.Writer("hello.service", "sh", 42)
	io.WriteString(w, "one\ntw")
	io.WriteString(w, "o\r\nthree")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := j.Tail("hello.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines(es), "|"); got != "one|two|three" {
		t.Fatalf("lines = %q", got)
	}
	for _, e := range es {
		if e.Unit != "hello.service" || e.Ident != "sh" || e.PID != 42 || e.Host != "host" || e.Stream != "stdout" || e.Time.IsZero() {
			t.Fatalf("bad entry %+v", e)
		}
	}
	if _, err := w.Write([]byte("x\n")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

func TestTailLastN(t *testing.T) {
	j := open(t, Options{})
	for i := range 10 {
		if err := j.Append(Entry{Unit: "a.service", Line: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := j.Tail("a.service", 3)
	if got := strings.Join(lines(es), ","); got != "7,8,9" {
		t.Fatalf("tail 3 = %s", got)
	}
	es, _ = j.Tail("none.service", 3)
	if len(es) != 0 {
		t.Fatalf("unknown unit has entries: %v", es)
	}
}

func TestRotationAndTailAcrossFiles(t *testing.T) {
	j := open(t, Options{MaxFileBytes: 400, MaxFiles: 3})
	const n = 40
	for i := range n {
		if err := j.Append(Entry{Unit: "r.service", Ident: "x", Line: fmt.Sprintf("line %02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(j.Dir(), "r.service.log*"))
	if len(files) != 3 {
		t.Fatalf("files = %v, want 3", files)
	}
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 400 {
			t.Fatalf("%s is %d bytes, over the limit", f, st.Size())
		}
	}
	all, err := j.Tail("r.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(all) >= n {
		t.Fatalf("kept %d entries; want some but not all of %d", len(all), n)
	}
	// Oldest first, contiguous, ending with the newest.
	first := n - len(all)
	for i, e := range all {
		if want := fmt.Sprintf("line %02d", first+i); e.Line != want {
			t.Fatalf("entry %d = %q want %q", i, e.Line, want)
		}
	}
	// A tail longer than the active file spans rotated files.
	active, _ := readEntries(filepath.Join(j.Dir(), "r.service.log"))
	k := len(active) + 2
	es, _ := j.Tail("r.service", k)
	if len(es) != k || es[k-1].Line != "line 39" || es[0].Line != fmt.Sprintf("line %02d", n-k) {
		t.Fatalf("tail %d = %v", k, lines(es))
	}
}

func TestFollowSurvivesRotation(t *testing.T) {
	j := open(t, Options{MaxFileBytes: 300, MaxFiles: 2})
	for i := range 3 {
		j.Append(Entry{Unit: "f.service", Line: fmt.Sprint("old", i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := j.Follow(ctx, "f.service", 2)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range 50 {
			j.Append(Entry{Unit: "f.service", Line: fmt.Sprint("new", i)})
		}
	}()
	var got []string
	deadline := time.After(30 * time.Second)
	for len(got) < 52 {
		select {
		case e := <-ch:
			got = append(got, e.Line)
		case <-deadline:
			t.Fatalf("got only %d entries: %v", len(got), got)
		}
	}
	if got[0] != "old1" || got[1] != "old2" || got[2] != "new0" || got[51] != "new49" {
		t.Fatalf("got %v", got)
	}
	cancel()
	for range ch {
	}
}

func TestFollowZeroOnlyNew(t *testing.T) {
	j := open(t, Options{})
	j.Append(Entry{Unit: "z.service", Line: "before"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := j.Follow(ctx, "z.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	j.Append(Entry{Unit: "z.service", Line: "after"})
	select {
	case e := <-ch:
		if e.Line != "after" {
			t.Fatalf("got %q", e.Line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no entry")
	}
}

func TestConcurrentWriters(t *testing.T) {
	j := open(t, Options{MaxFileBytes: 1 << 20})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := j.Writer("c.service", fmt.Sprint("w", w), w)
			for i := range 100 {
				fmt.Fprintf(wr, "writer %d line %d\n", w, i)
			}
			wr.Close()
		}()
	}
	wg.Wait()
	es, _ := j.Tail("c.service", 0)
	if len(es) != 800 {
		t.Fatalf("%d entries, want 800", len(es))
	}
}

func TestUnitNameEscapeRejected(t *testing.T) {
	j := open(t, Options{})
	for _, name := range []string{"", "../x", "a/b", "..", ".", "x..y", "/etc/passwd", "a\x00b"} {
		if err := j.Append(Entry{Unit: name, Line: "x"}); err == nil {
			t.Errorf("Append(%q) accepted", name)
		}
		if _, err := j.Tail(name, 1); err == nil {
			t.Errorf("Tail(%q) accepted", name)
		}
		if err := j.Remove(name); err == nil {
			t.Errorf("Remove(%q) accepted", name)
		}
		if _, err := j.Writer(name, "x", 1).Write([]byte("x\n")); err == nil {
			t.Errorf("Writer(%q) accepted", name)
		}
	}
	if err := j.Append(Entry{Unit: "web@1.service", Line: "x"}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(j.Dir()))
	if len(entries) != 1 {
		t.Fatalf("something escaped the journal dir: %v", entries)
	}
}

func TestRemove(t *testing.T) {
	j := open(t, Options{MaxFileBytes: 200})
	for i := range 20 {
		j.Append(Entry{Unit: "d.service", Line: fmt.Sprint(i)})
	}
	if err := j.Remove("d.service"); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(j.Dir(), "d.service*")); len(files) != 0 {
		t.Fatalf("left %v", files)
	}
	j.Append(Entry{Unit: "d.service", Line: "again"})
	es, _ := j.Tail("d.service", 0)
	if len(es) != 1 || es[0].Line != "again" {
		t.Fatalf("after remove: %v", es)
	}
}

func TestLifecycleLog(t *testing.T) {
	j := open(t, Options{})
	j.Log("h.service", "fleetd", 1, "Started Hello World.")
	es, _ := j.Tail("h.service", 1)
	if len(es) != 1 || es[0].Stream != StreamFleet || es[0].Line != "Started Hello World." {
		t.Fatalf("%+v", es)
	}
}

func TestFormat(t *testing.T) {
	ts := time.Date(2014, 11, 4, 11, 41, 37, 123456789, time.UTC)
	e := Entry{Time: ts, Unit: "hello.service", Host: "core-01", Ident: "docker", PID: 4639, Stream: "stdout", Line: "Hello World"}
	lt := ts.Local()
	cases := map[string]string{
		"short":         lt.Format("Jan 02 15:04:05") + " core-01 docker[4639]: Hello World",
		"short-precise": lt.Format("Jan 02 15:04:05") + ".123456 core-01 docker[4639]: Hello World",
		"short-iso":     lt.Format("2006-01-02T15:04:05-0700") + " core-01 docker[4639]: Hello World",
		"cat":           "Hello World",
	}
	for out, want := range cases {
		got, err := Format(e, out)
		if err != nil || got != want {
			t.Errorf("Format(%s) = %q, %v; want %q", out, got, err, want)
		}
	}
	js, err := Format(e, "json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	if m["MESSAGE"] != "Hello World" || m["_PID"] != "4639" || m["SYSLOG_IDENTIFIER"] != "docker" ||
		m["_HOSTNAME"] != "core-01" || m["_SYSTEMD_UNIT"] != "hello.service" || m["__REALTIME_TIMESTAMP"] != "1415101297123456" {
		t.Errorf("json = %s", js)
	}
	_, err = Format(e, "verbose-ish")
	if err == nil || !strings.Contains(err.Error(), "short-precise") || !strings.Contains(err.Error(), "json") {
		t.Errorf("unknown output error = %v", err)
	}
	e.PID = 0
	if got, _ := Format(e, "short"); !strings.HasSuffix(got, " core-01 docker: Hello World") {
		t.Errorf("no pid: %q", got)
	}
}

func TestLongLineSplit(t *testing.T) {
	j := open(t, Options{})
	w := j.Writer("l.service", "x", 1)
	w.Write([]byte(strings.Repeat("a", LineMax+10) + "\n"))
	w.Close()
	es, _ := j.Tail("l.service", 0)
	if len(es) != 2 || len(es[0].Line) != LineMax || len(es[1].Line) != 10 {
		t.Fatalf("%d entries", len(es))
	}
}

// Two Journals on one directory stand for two processes (fleetd and a
// unit's shim): appends interleave under the file lock, rotation by one is
// seen by the other, and Follow sees the other's entries, in order. The
// writers go in near-lockstep: neither appends its entry i+1 before the
// other has appended its entry i, so their appends interleave (and the
// two at one index contend for the lock).
func TestSharedDirectory(t *testing.T) {
	a := open(t, Options{MaxFileBytes: 2500, MaxFiles: 3})
	b, err := Open(a.Dir(), Options{MaxFileBytes: 2500, MaxFiles: 3, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The unit's file exists when the follower starts. (A follower that
	// starts before it does misses a file rotated away before its first
	// read.) The 31 entries of ~110 bytes rotate the 2500-byte file
	// exactly once, which a follower holding the file survives however
	// late it reads.
	if err := a.Log("s.service", "sh", 1, "before"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Follow(ctx, "s.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var done [2]int // entries appended by each writer
	var wg sync.WaitGroup
	for w, j := range []*Journal{a, b} {
		wg.Go(func() {
			for i := range 15 {
				mu.Lock()
				for done[1-w] < i {
					cond.Wait()
				}
				mu.Unlock()
				if err := j.Append(Entry{Unit: "s.service", Line: fmt.Sprintf("w%d %02d", w, i)}); err != nil {
					t.Error(err)
				}
				mu.Lock()
				done[w]++
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	next := [2]int{} // the next index expected from each writer
	deadline := time.After(30 * time.Second)
	for len(seen) < 30 {
		select {
		case e := <-ch:
			if seen[e.Line] {
				t.Fatalf("duplicate %q", e.Line)
			}
			seen[e.Line] = true
			var w, i int
			if _, err := fmt.Sscanf(e.Line, "w%d %d", &w, &i); err != nil || w < 0 || w > 1 {
				t.Fatalf("entry %q", e.Line)
			}
			// Each writer's entries in order, and never two ahead of
			// the other's: the follower reads the appends' order.
			if i != next[w] || i > next[1-w]+1 {
				t.Fatalf("got %q after w0 %d, w1 %d entries", e.Line, next[0], next[1])
			}
			next[w]++
		case <-deadline:
			t.Fatalf("follower saw %d of 30 entries: %v", len(seen), seen)
		}
	}
	if _, err := os.Stat(a.fileName("s.service", 1)); err != nil {
		t.Fatalf("no rotation: %v", err)
	}
	if _, err := os.Stat(a.fileName("s.service", 2)); err == nil {
		t.Fatal("more than one rotation")
	}
	es, _ := b.Tail("s.service", 0)
	if len(es) == 0 || len(es) > 31 {
		t.Fatalf("tail: %d entries", len(es))
	}
	for _, e := range es {
		if e.Line == "" {
			t.Fatalf("torn entry in %v", lines(es))
		}
	}
}
