package journal

import (
	"context"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// Follow in fake time: appends through the follower's own Journal arrive
// at once; another process's appends (a second Journal on the directory)
// arrive at the follower's next poll, FollowPoll apart from its start,
// never before and all of them, across a rotation by that other process.
func TestFollowPollsOtherProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		a, err := Open(dir, Options{Hostname: "a", MaxFileBytes: 2000, MaxFiles: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := Open(dir, Options{Hostname: "b", MaxFileBytes: 2000, MaxFiles: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		ch, err := a.Follow(ctx, "s.service", 0)
		if err != nil {
			t.Fatal(err)
		}
		sleepUntil := func(d time.Duration) {
			time.Sleep(d - time.Since(start))
		}
		// nothing checks that no entry is ready now.
		nothing := func(what string) {
			t.Helper()
			synctest.Wait()
			select {
			case e := <-ch:
				t.Fatalf("%s: got %q at %v", what, e.Line, time.Since(start))
			default:
			}
		}
		// recv receives one entry and checks its line and when it came.
		recv := func(line string, at time.Duration) Entry {
			t.Helper()
			e := <-ch
			if e.Line != line || time.Since(start) != at {
				t.Fatalf("got %q at %v, want %q at %v", e.Line, time.Since(start), line, at)
			}
			return e
		}

		// Our own append: at once, no time passes.
		if err := a.Log("s.service", "sh", 1, "own"); err != nil {
			t.Fatal(err)
		}
		recv("own", 0)

		// Another process's append at 50 ms: seen at the 200 ms poll.
		sleepUntil(50 * time.Millisecond)
		if err := b.Log("s.service", "sh", 2, "other"); err != nil {
			t.Fatal(err)
		}
		sleepUntil(FollowPoll - time.Nanosecond)
		nothing("before the poll")
		if e := recv("other", FollowPoll); !e.Time.Equal(start.Add(50 * time.Millisecond)) {
			t.Errorf("entry time %v, want its append at 50ms", e.Time.Sub(start))
		}

		// Our own append between polls still comes at once.
		sleepUntil(FollowPoll + 10*time.Millisecond)
		a.Log("s.service", "sh", 1, "own again")
		recv("own again", FollowPoll+10*time.Millisecond)
		// Having delivered, the follower reads once more (finding
		// nothing) before it waits again: let it, so that the burst
		// below comes after that read.
		synctest.Wait()

		// A burst by the other process that rotates the file once
		// (2000-byte files, ~100-byte entries): all of it, in order, at
		// the next poll.
		rotated := func(k int) bool { _, err := os.Stat(b.fileName("s.service", k)); return err == nil }
		n := 0
		for ; !rotated(1) || n < 25; n++ {
			if n == 100 {
				t.Fatal("100 entries did not rotate a 2000-byte file")
			}
			if err := b.Log("s.service", "sh", 2, fmt.Sprintf("burst %02d", n)); err != nil {
				t.Fatal(err)
			}
		}
		if rotated(2) {
			t.Fatal("the burst rotated the file more than once")
		}
		sleepUntil(2*FollowPoll - time.Nanosecond)
		nothing("burst before the poll")
		for i := range n {
			recv(fmt.Sprintf("burst %02d", i), 2*FollowPoll)
		}
		sleepUntil(10 * FollowPoll)
		nothing("after the burst")

		cancel()
		for range ch {
		}
	})
}

// followBurst starts a follower of s.service on a's Journal (before the
// unit has any file if early), has another process (b) append lines until
// its files rotated rotations times (and at least min lines), and returns
// the lines sent, the ones the follower got at its first poll and the
// ones still in the files.
func followBurst(t *testing.T, early bool, rotations, min int) (sent, got, disk []string) {
	dir := t.TempDir()
	a, err := Open(dir, Options{Hostname: "a", MaxFileBytes: 2000, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(dir, Options{Hostname: "b", MaxFileBytes: 2000, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log := func(line string) {
		t.Helper()
		sent = append(sent, line)
		if err := b.Log("s.service", "sh", 2, line); err != nil {
			t.Fatal(err)
		}
	}
	if !early {
		log("before")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	ch, err := a.Follow(ctx, "s.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	sent = nil
	synctest.Wait() // the follower's first read, finding nothing
	// Count rotations by the first line of the active file changing.
	first := func() string {
		es, _ := readEntries(b.fileName("s.service", 0))
		if len(es) == 0 {
			return ""
		}
		return es[0].Line
	}
	rot, cur := 0, first()
	for n := 0; rot < rotations || n < min; n++ {
		if n == 1000 {
			t.Fatal("1000 entries did not rotate enough")
		}
		log(fmt.Sprintf("e%03d", n))
		if f := first(); f != cur && cur != "" {
			rot++
		}
		cur = first()
	}
	time.Sleep(FollowPoll - time.Since(start))
	for {
		synctest.Wait()
		select {
		case e := <-ch:
			if time.Since(start) != FollowPoll {
				t.Fatalf("got %q at %v, want at the poll", e.Line, time.Since(start))
			}
			got = append(got, e.Line)
			continue
		default:
		}
		break
	}
	es, err := b.Tail("s.service", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		disk = append(disk, e.Line)
	}
	return sent, got, disk
}

func wantAll(t *testing.T, sent, got []string) {
	t.Helper()
	if fmt.Sprint(sent) != fmt.Sprint(got) {
		t.Fatalf("got %d of %d entries:\n got %v\nwant %v", len(got), len(sent), got, sent)
	}
}

// The follower starts before the unit's file exists; the other process
// creates it and rotates it before the first poll: the rotated file's
// entries come too.
func TestFollowRotationBeforeFirstFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent, got, _ := followBurst(t, true, 1, 25)
		wantAll(t, sent, got)
	})
}

// The other process rotates twice between two polls: the file in the
// middle is not skipped.
func TestFollowTwoRotationsBetweenPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent, got, _ := followBurst(t, false, 2, 45)
		wantAll(t, sent, got)
	})
}

// Both at once: no file at the start, two rotations before the first poll.
func TestFollowTwoRotationsBeforeFirstFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent, got, _ := followBurst(t, true, 2, 0)
		wantAll(t, sent, got)
	})
}

// More rotations between two polls than rotated files are kept: the
// follower delivers the rest of the file it held open and what still
// exists, in order, each entry once, up to the last one.
func TestFollowRotationsOutrunKeptFiles(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint("early=", early), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sent, got, disk := followBurst(t, early, 5, 0)
				if len(got) == 0 || got[len(got)-1] != sent[len(sent)-1] {
					t.Fatalf("got %v, want it to end with %q", got, sent[len(sent)-1])
				}
				for i := 1; i < len(got); i++ {
					if got[i] <= got[i-1] {
						t.Fatalf("out of order or duplicated: %v", got)
					}
				}
				// Every entry still on disk was delivered.
				if len(disk) == 0 || len(got) < len(disk) || fmt.Sprint(got[len(got)-len(disk):]) != fmt.Sprint(disk) {
					t.Fatalf("got %v, want it to end with the files' %v", got, disk)
				}
			})
		})
	}
}
