package etcdserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fleetd/fleet/internal/etcdserver"
)

// TestStartRefusesAFullDisk: on a file system with less than MinFreeBytes
// free, Start says so, in numbers, instead of etcd failing mid-write.
func TestStartRefusesAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); skipping", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	_, err := etcdserver.Start(testCtx(t), etcdserver.Config{
		Name: "full", DataDir: filepath.Join(dir, "etcd"),
		ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
	})
	if err == nil || !strings.Contains(err.Error(), "MB free on the file system of") || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("Start on a 32 MB file system: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "etcd", "member")); serr == nil {
		t.Error("etcd wrote its data dir anyway")
	}
}
