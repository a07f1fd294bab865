package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// onDisk returns the number of files of each unit in dir.
func onDisk(t *testing.T, dir string) map[string]int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range ents {
		unit, ok := unitOfFile(d.Name())
		if !ok {
			t.Fatalf("stray file %q", d.Name())
		}
		out[unit]++
	}
	return out
}

func churn(t *testing.T, j *Journal, clock *fakeClock, prefix string, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("%s-%03d.service", prefix, i)
		if err := j.Log(name, "sh", 1, "hello"); err != nil {
			t.Fatal(err)
		}
		if clock != nil {
			clock.Add(time.Minute)
		}
		if err := j.Release(name); err != nil {
			t.Fatal(err)
		}
	}
}

func mapLen(j *Journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.units)
}

// TestRetentionChurn: 600 unit names written and released one after the
// other leave the journals of the last DefaultMaxUnloaded of them (each
// with its log and lock file) besides those of the units in use, and no
// more open files or per-unit state than before.
func TestRetentionChurn(t *testing.T) {
	j := open(t, Options{})
	for i := range 5 {
		if err := j.Log(fmt.Sprintf("loaded-%d.service", i), "sh", 1, "up"); err != nil {
			t.Fatal(err)
		}
	}
	before := openFDs(t)
	churn(t, j, nil, "churn", 600)
	disk := onDisk(t, j.Dir())
	if len(disk) != DefaultMaxUnloaded+5 {
		t.Fatalf("%d units have files, want %d", len(disk), DefaultMaxUnloaded+5)
	}
	for i := range 5 {
		if n := disk[fmt.Sprintf("loaded-%d.service", i)]; n != 2 {
			t.Fatalf("loaded-%d.service has %d files", i, n)
		}
	}
	for i := range 600 {
		name := fmt.Sprintf("churn-%03d.service", i)
		kept := i >= 600-DefaultMaxUnloaded
		if n := disk[name]; (n == 2) != kept || (n != 0 && n != 2) {
			t.Fatalf("%s: %d files (kept: %v)", name, n, kept)
		}
	}
	if after := openFDs(t); after > before+2 {
		t.Fatalf("%d fds open after 600 released units, %d before", after, before)
	}
	if n := mapLen(j); n > 5 {
		t.Fatalf("%d unit states kept for 5 units in use", n)
	}
	if es, err := j.Tail("churn-599.service", 0); err != nil || len(es) != 1 {
		t.Fatalf("tail of a kept journal: %v %v", es, err)
	}
	if es, err := j.Tail("churn-000.service", 0); err != nil || len(es) != 0 {
		t.Fatalf("tail of a pruned journal: %v %v", es, err)
	}
	if n := len(onDisk(t, j.Dir())); n != DefaultMaxUnloaded+5 {
		t.Fatalf("tails left files behind: %d units", n)
	}
}

// TestRetentionOldestFirst: beyond MaxUnloaded, the journal released
// longest ago goes first, log, rotated files and lock file together.
func TestRetentionOldestFirst(t *testing.T) {
	clock := newFakeClock()
	j := open(t, Options{MaxUnloaded: 3, MaxUnloadedAge: -1, MaxFileBytes: 300, Now: clock.Now})
	for _, u := range []string{"a", "b", "c", "d"} {
		for i := range 10 {
			j.Log(u+".service", "sh", 1, fmt.Sprint("line ", i))
		}
	}
	if n := onDisk(t, j.Dir())["a.service"]; n < 3 {
		t.Fatalf("a.service has %d files: no rotation", n)
	}
	// Released in another order than written.
	for _, u := range []string{"c", "a", "d", "b"} {
		clock.Add(time.Second)
		if err := j.Release(u + ".service"); err != nil {
			t.Fatal(err)
		}
	}
	disk := onDisk(t, j.Dir())
	if disk["c.service"] != 0 || disk["a.service"] == 0 || disk["d.service"] == 0 || disk["b.service"] == 0 {
		t.Fatalf("after 4 releases: %v", disk)
	}
	churn(t, j, clock, "x", 2)
	if disk := onDisk(t, j.Dir()); len(disk) != 3 || disk["a.service"] != 0 || disk["d.service"] != 0 || disk["b.service"] == 0 {
		t.Fatalf("after 2 more: %v", disk)
	}
}

// TestRetentionLoadedNeverPruned: a unit written and never released keeps
// its journal whatever the count and age of the others.
func TestRetentionLoadedNeverPruned(t *testing.T) {
	clock := newFakeClock()
	j := open(t, Options{MaxUnloaded: 2, MaxUnloadedAge: time.Hour, Now: clock.Now})
	j.Log("loaded.service", "sh", 1, "up")
	churn(t, j, clock, "c", 20)
	clock.Add(48 * time.Hour)
	churn(t, j, clock, "d", 1)
	disk := onDisk(t, j.Dir())
	if len(disk) != 2 || disk["loaded.service"] != 2 || disk["d-000.service"] != 2 {
		t.Fatalf("on disk: %v", disk)
	}
	if es, _ := j.Tail("loaded.service", 0); len(es) != 1 {
		t.Fatalf("tail: %v", es)
	}
}

// TestRetentionReloaded: a unit released then written again (loaded
// again) is in use: kept; released once more it is the newest.
func TestRetentionReloaded(t *testing.T) {
	clock := newFakeClock()
	j := open(t, Options{MaxUnloaded: 2, MaxUnloadedAge: time.Hour, Now: clock.Now})
	j.Log("x.service", "sh", 1, "first life")
	j.Release("x.service")
	clock.Add(time.Minute)
	j.Log("x.service", "sh", 1, "second life")
	churn(t, j, clock, "c", 10)
	clock.Add(2 * time.Hour)
	churn(t, j, clock, "d", 1)
	if es, _ := j.Tail("x.service", 0); len(es) != 2 {
		t.Fatalf("reloaded unit's journal: %v", lines(es))
	}
	j.Release("x.service")
	churn(t, j, clock, "e", 1)
	if disk := onDisk(t, j.Dir()); len(disk) != 2 || disk["x.service"] != 2 || disk["e-000.service"] != 2 {
		t.Fatalf("on disk: %v", disk)
	}
	churn(t, j, clock, "f", 1)
	if disk := onDisk(t, j.Dir()); len(disk) != 2 || disk["x.service"] != 0 {
		t.Fatalf("on disk: %v", disk)
	}
}

// TestRetentionMaxAge: journals unused for longer than MaxUnloadedAge go at
// the next release, however few there are.
func TestRetentionMaxAge(t *testing.T) {
	clock := newFakeClock()
	j := open(t, Options{MaxUnloaded: -1, MaxUnloadedAge: 24 * time.Hour, Now: clock.Now})
	rel := func(u string) {
		t.Helper()
		j.Log(u, "sh", 1, "x")
		if err := j.Release(u); err != nil {
			t.Fatal(err)
		}
	}
	rel("a.service") // t0
	clock.Add(20 * time.Hour)
	rel("b.service") // t0+20h
	clock.Add(4 * time.Hour)
	rel("c.service") // t0+24h: a is 24h old, not more
	if disk := onDisk(t, j.Dir()); len(disk) != 3 {
		t.Fatalf("at 24h: %v", disk)
	}
	clock.Add(time.Hour)
	rel("d.service") // t0+25h
	if disk := onDisk(t, j.Dir()); len(disk) != 3 || disk["a.service"] != 0 {
		t.Fatalf("at 25h: %v", disk)
	}
	clock.Add(20 * time.Hour)
	if err := j.Prune(nil); err != nil { // t0+45h, nothing released
		t.Fatal(err)
	}
	waitScan(t, j)
	if disk := onDisk(t, j.Dir()); len(disk) != 2 || disk["b.service"] != 0 {
		t.Fatalf("at 45h: %v", disk)
	}
}

func waitScan(t *testing.T, j *Journal) {
	t.Helper()
	j.mu.Lock()
	ch := j.ret.scan
	j.mu.Unlock()
	if ch == nil {
		t.Fatal("no scan started")
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("scan did not end")
	}
}

// leaveJournals writes n units' journals in dir, as an earlier fleetd
// would have, last written one minute apart (u-000 first).
func leaveJournals(t *testing.T, dir string, n int) {
	t.Helper()
	j, err := Open(dir, Options{Hostname: "h", MaxUnloaded: -1, MaxUnloadedAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := j.Log(fmt.Sprintf("u-%03d.service", i), "sh", 1, "old"); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	t0 := time.Now().Add(-time.Duration(n+10) * time.Minute)
	for i := range n {
		ts := t0.Add(time.Duration(i) * time.Minute)
		for _, p := range []string{filepath.Join(dir, fmt.Sprintf("u-%03d.service.log", i)), filepath.Join(dir, fmt.Sprintf(".u-%03d.service.lock", i))} {
			if err := os.Chtimes(p, ts, ts); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRetentionFoundOnDisk: journals left by an earlier process are pruned
// by Prune, oldest first, except those of units loaded (as the runner
// says); Release alone leaves them be.
func TestRetentionFoundOnDisk(t *testing.T) {
	dir := t.TempDir()
	leaveJournals(t, dir, 10)
	j, err := Open(dir, Options{Hostname: "h", MaxUnloaded: 3, MaxUnloadedAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.Log("new.service", "sh", 1, "x")
	j.Release("new.service")
	if disk := onDisk(t, dir); len(disk) != 11 {
		t.Fatalf("Release pruned journals found on disk: %v", disk)
	}
	loadedSet := map[string]bool{"u-000.service": true, "u-005.service": true}
	loaded := func(u string) bool { return loadedSet[u] }
	j.Prune(loaded)
	waitScan(t, j)
	j.Prune(loaded)
	disk := onDisk(t, dir)
	for _, u := range []string{"u-000.service", "u-005.service", "new.service", "u-009.service", "u-008.service"} {
		if disk[u] != 2 {
			t.Fatalf("%s pruned: %v", u, disk)
		}
	}
	if len(disk) != 5 {
		t.Fatalf("on disk: %v", disk)
	}
	// Released later, a unit that was loaded since startup re-enters the
	// index, as newest: Release no longer prunes without asking loaded.
	delete(loadedSet, "u-005.service")
	j.Release("u-005.service")
	if disk := onDisk(t, dir); len(disk) != 5 {
		t.Fatalf("Release pruned after Prune(loaded): %v", disk)
	}
	j.Prune(loaded)
	disk = onDisk(t, dir)
	if len(disk) != 4 || disk["u-008.service"] != 0 || disk["u-005.service"] != 2 || disk["u-000.service"] != 2 {
		t.Fatalf("on disk: %v", disk)
	}
}

// TestPruneBounded: one call removes at most pruneBatch journals; repeated
// calls catch up.
func TestPruneBounded(t *testing.T) {
	dir := t.TempDir()
	leaveJournals(t, dir, 200)
	j, err := Open(dir, Options{Hostname: "h", MaxUnloaded: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.Prune(nil)
	waitScan(t, j)
	prev := len(onDisk(t, dir))
	calls := 0
	for prev > 10 {
		if err := j.Prune(nil); err != nil {
			t.Fatal(err)
		}
		calls++
		n := len(onDisk(t, dir))
		if prev-n > pruneBatch || n == prev {
			t.Fatalf("one Prune went from %d to %d units", prev, n)
		}
		prev = n
	}
	if disk := onDisk(t, dir); len(disk) != 10 || disk["u-190.service"] != 2 || disk["u-199.service"] != 2 {
		t.Fatalf("after %d calls: %v", calls, disk)
	}
}

// TestReadOfUnknownUnitLeavesNothing: reading or following a unit that
// never ran here leaves no lock file, no fd and no state.
func TestReadOfUnknownUnitLeavesNothing(t *testing.T) {
	j := open(t, Options{})
	before := openFDs(t)
	for i := range 50 {
		if _, err := j.Tail(fmt.Sprintf("nope-%d.service", i), 10); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := j.Follow(ctx, "followed.service", 10)
	if err != nil {
		t.Fatal(err)
	}
	if disk := onDisk(t, j.Dir()); len(disk) != 0 {
		t.Fatalf("reads left files: %v", disk)
	}
	// The follower still sees the unit once it runs.
	j.Log("followed.service", "sh", 1, "hi")
	select {
	case e := <-ch:
		if e.Line != "hi" {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follower saw nothing")
	}
	cancel()
	for range ch {
	}
	j.Release("followed.service")
	if after := openFDs(t); after > before+1 {
		t.Fatalf("%d fds, %d before", after, before)
	}
	// The follower forgot the unit before its channel closed, and
	// Release forgets it before it returns.
	if n := mapLen(j); n != 0 {
		t.Fatalf("%d unit states left", n)
	}
}

// TestLockFileRemovedUnderWaiter: a process waiting for a unit's lock
// while the holder removes the lock file takes the lock on the new file
// at the path, not on the removed one (which would exclude no one).
func TestLockFileRemovedUnderWaiter(t *testing.T) {
	a := open(t, Options{})
	b, err := Open(a.Dir(), Options{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Log("s.service", "sh", 1, "before")
	u, err := a.lockUnit("s.service")
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := a.flockLocked("s.service", u)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- b.Log("s.service", "sh", 1, "after") }()
	awaitFlockWaiter(t, a.lockName("s.service"))
	a.removeLogsLocked("s.service", u)
	os.Remove(a.lockName("s.service"))
	unlock()
	u.closeFilesLocked()
	u.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	bu := b.units["s.service"]
	b.mu.Unlock()
	bu.mu.Lock()
	fst, ferr := bu.lock.Stat()
	bu.mu.Unlock()
	pst, perr := os.Stat(b.lockName("s.service"))
	if ferr != nil || perr != nil || !os.SameFile(fst, pst) {
		t.Fatalf("b holds a lock file that is not at the path: %v %v", ferr, perr)
	}
	if es, _ := a.Tail("s.service", 0); len(es) != 1 || es[0].Line != "after" {
		t.Fatalf("tail: %v", lines(es))
	}
}

// TestPruneRacesWriterAndFollower: a unit pruned again and again while
// another process (a second Journal) appends to it and a Follow reads it:
// no error, no torn line, and the follower keeps up.
func TestPruneRacesWriterAndFollower(t *testing.T) {
	a := open(t, Options{MaxUnloaded: 1, MaxUnloadedAge: -1, MaxFileBytes: 1000, MaxFiles: 2})
	b, err := Open(a.Dir(), Options{Hostname: "h", MaxFileBytes: 1000, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Follow(ctx, "s.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		defer close(werr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.Log("s.service", "shim", 2, fmt.Sprint("w ", i)); err != nil {
				werr <- err
				return
			}
		}
	}()
	go func() {
		for range ch {
		}
	}()
	for i := range 200 {
		a.Log("s.service", "fleetd", 1, "x")
		a.Release("s.service")
		churn(t, a, nil, fmt.Sprint("o", i), 1) // prunes s.service
	}
	close(stop)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	cancel()
	for k := range 2 {
		data, err := os.ReadFile(a.fileName("s.service", k))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var e Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("torn line %q", sc.Text())
			}
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Fatalf("file %d ends with a partial line", k)
		}
	}
	// A fresh follower sees the writer's next entry after all that.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, err := a.Follow(ctx2, "s.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Log("s.service", "shim", 2, "last")
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-ch2:
			if e.Line == "last" {
				return
			}
		case <-deadline:
			t.Fatal("follower missed the last entry")
		}
	}
}

func TestUnitOfFile(t *testing.T) {
	cases := map[string]string{
		"a.service.log":       "a.service",
		"a.service.log.1":     "a.service",
		"a.service.log.12":    "a.service",
		".a.service.lock":     "a.service",
		"x.log.log":           "x.log",
		"x.log.log.2":         "x.log",
		".x.log.lock":         "x.log",
		"web@1.service.log":   "web@1.service",
		"a.service.log.":      "",
		"a.service.log.x":     "",
		"a.service":           "",
		"..a.lock":            ".a",
		".lock":               "",
		"a.service.log.1.tmp": "",
	}
	for name, want := range cases {
		got, ok := unitOfFile(name)
		if ok != (want != "") || got != want && ok {
			t.Errorf("unitOfFile(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// awaitFlockWaiter waits until some process waits for a flock on path, as
// /proc/locks shows ("->" lines); without /proc/locks it returns at once.
func awaitFlockWaiter(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := fmt.Sprintf(":%d", st.Sys().(*syscall.Stat_t).Ino)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Logf("no /proc/locks (%v): not waiting for the waiter", err)
			return
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) > 6 && f[1] == "->" && f[2] == "FLOCK" && strings.HasSuffix(f[6], ino) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiter for the flock on %s in /proc/locks:\n%s", path, b)
		}
		time.Sleep(time.Millisecond)
	}
}
