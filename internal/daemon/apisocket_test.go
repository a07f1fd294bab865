package daemon

import (
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// The API socket is never world-accessible, even under umask 000: 0600
// without its group, 0660 and that group with it. It is reported, and
// removed on Close, under its final path; no temporary directory is left.
func TestUnixSocketUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	// Another group than the process's shows the chown (root may give
	// the socket to any group; others only to their own).
	group, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("no name for this process's group: %v", err)
	}
	if g, err := user.LookupGroup("daemon"); err == nil && os.Getuid() == 0 {
		group = g
	}
	gid, _ := strconv.Atoi(group.Gid)
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name, group string
		mode        os.FileMode
		gid         int
	}{
		{"nogroup", "fleet-test-no-such-group", 0o600, os.Getgid()},
		{"group", group.Name, 0o660, gid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			path := filepath.Join(dir, "fleet.sock")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// A stale socket file of an earlier fleetd is replaced.
			if err := os.WriteFile(path, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			l, err := listenUnix(path, tc.group, log)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.mode {
				t.Errorf("socket mode %v, want socket %v", fi.Mode(), tc.mode)
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != tc.gid {
				t.Errorf("socket gid %d, want %d", st.Gid, tc.gid)
			}
			if a := l.Addr().String(); a != path {
				t.Errorf("Addr %q, want %q", a, path)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %v", entries)
			}
			go func() {
				if c, err := l.Accept(); err == nil {
					c.Close()
				}
			}()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket left after Close: %v", err)
			}
		})
	}
}

// Close leaves a socket alone that another fleetd has put at the path.
func TestUnixSocketCloseKeepsAReplacement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.sock")
	log := slog.New(slog.DiscardHandler)
	first, err := listenUnix(path, "fleet-test-no-such-group", log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := listenUnix(path, "fleet-test-no-such-group", log)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	first.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the second socket was removed: %v", err)
	}
}
