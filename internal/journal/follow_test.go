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
