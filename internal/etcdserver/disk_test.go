package etcdserver_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// TestStartRefusesAFullDisk: on a file system with less than MinFreeBytes
// free, Start says so, in numbers, instead of etcd failing mid-write.
func TestStartRefusesAFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "32m")
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

// mountTmpfs mounts a tmpfs of size (mount's syntax, "512m") on a temporary
// directory for the test, or skips it saying why.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); skipping", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// fill allocates a file in dir that leaves about left bytes free.
func fill(t *testing.T, dir string, left uint64) string {
	t.Helper()
	free := freeBytes(t, dir)
	if free <= left {
		t.Fatalf("only %d MB free already", free>>20)
	}
	f, err := os.CreateTemp(dir, "filler")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(free-left)); err != nil {
		t.Fatalf("fallocate %d MB: %v", (free-left)>>20, err)
	}
	t.Logf("filled %s with %d MB: %d MB free", dir, (free-left)>>20, freeBytes(t, dir)>>20)
	return f.Name()
}

// lockedBuffer is a log sink the test reads while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// await polls cond every 50 ms until it holds or d passes.
func await(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, d, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDiskGuardStopsAndResumesWrites: with a real etcd on a real (small)
// file system, filling the disk below the low-water mark makes etcd refuse
// writes with its no-space error while reads, deletes and lease renewals go
// on, ExplainNoSpace names the directory and the machine, and freeing the
// space lets writes resume, also across a restart of the member while the
// disk was full.
func TestDiskGuardStopsAndResumesWrites(t *testing.T) {
	dir := mountTmpfs(t, "512m")
	ctx := testCtx(t)
	const pw = "0123456789abcdef-token"
	logs := &lockedBuffer{}
	cfg := etcdserver.Config{
		Name: "full", DataDir: filepath.Join(dir, "etcd"),
		ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true,
		RootPassword:      pw,
		DiskCheckInterval: 100 * time.Millisecond,
		Machine:           "m-full/10.0.0.9",
		Logger:            slog.New(slog.NewTextHandler(logs, nil)),
	}
	start := func() (*etcdserver.Server, *clientv3.Client) {
		t.Helper()
		srv, err := etcdserver.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientURLs(), DialTimeout: 5 * time.Second,
			Logger: zap.NewNop(), Username: etcdserver.RootUser, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return srv, cli
	}
	srv, cli := start()
	free := freeBytes(t, dir)
	t.Logf("%d MB free after start", free>>20)
	if free < etcdserver.DefaultMinFreeSpace+etcdserver.DiskResumeMargin+16<<20 {
		t.Skipf("only %d MB free on the tmpfs after start; the test needs the resume mark plus a margin", free>>20)
	}
	if _, err := cli.Put(ctx, "before", "v"); err != nil {
		t.Fatal(err)
	}
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}

	filler := fill(t, dir, 200<<20)
	var putErr error
	await(t, "a put refused for lack of space", 15*time.Second, func() (bool, string) {
		_, putErr = cli.Put(ctx, "during", "v")
		return etcdserver.IsNoSpace(putErr), fmt.Sprint(putErr)
	})
	if !strings.Contains(putErr.Error(), "database space exceeded") {
		t.Errorf("put error %q: want etcd's own words", putErr)
	}
	// Transactions that put are refused too, and so are new leases.
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("txn", "v")).Commit(); !etcdserver.IsNoSpace(err) {
		t.Errorf("txn put while full: %v; want no space", err)
	}
	if _, err := cli.Grant(ctx, 60); !etcdserver.IsNoSpace(err) {
		t.Errorf("lease grant while full: %v; want no space", err)
	}
	// Reads, deletes and lease renewals go on.
	if gr, err := cli.Get(ctx, "before"); err != nil || len(gr.Kvs) != 1 {
		t.Errorf("read while full: %v %v", gr, err)
	}
	if _, err := cli.KeepAliveOnce(ctx, lease.ID); err != nil {
		t.Errorf("lease renewal while full: %v", err)
	}
	if _, err := cli.Delete(ctx, "before"); err != nil {
		t.Errorf("delete while full: %v", err)
	}
	msg := etcdserver.ExplainNoSpace(ctx, etcdkv.New(cli), "")
	for _, want := range []string{"etcd refuses writes", cfg.DataDir, "m-full/10.0.0.9", "MB free", "free space"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ExplainNoSpace = %q; lacks %q", msg, want)
		}
	}
	if out := logs.String(); !strings.Contains(out, "nearly full") || !strings.Contains(out, cfg.DataDir) {
		t.Errorf("no warning naming %s:\n%s", cfg.DataDir, out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	await(t, "writes accepted again", 15*time.Second, func() (bool, string) {
		_, err := cli.Put(ctx, "after", "v")
		return err == nil, fmt.Sprint(err)
	})
	// The guard disarms, then logs and deletes its record.
	await(t, "the guard saying writes resumed", 15*time.Second, func() (bool, string) {
		return strings.Contains(logs.String(), "accepts writes again"), logs.String()
	})
	await(t, "the guard's record deleted", 15*time.Second, func() (bool, string) {
		gr, err := cli.Get(ctx, etcdserver.DefaultNoSpaceKeyPrefix, clientv3.WithPrefix())
		return err == nil && len(gr.Kvs) == 0, fmt.Sprint(gr, err)
	})
	if al, err := cli.AlarmList(ctx); err != nil || len(al.Alarms) != 0 {
		t.Errorf("alarms after the disk was freed: %v %v", al, err)
	}

	// Full again, and the member restarts while it is: the alarm stays
	// (etcd keeps it in its database); once space is back, the restarted
	// guard knows the alarm is its own and disarms it.
	filler = fill(t, dir, 200<<20)
	await(t, "a put refused for lack of space again", 15*time.Second, func() (bool, string) {
		_, err := cli.Put(ctx, "during", "v")
		return etcdserver.IsNoSpace(err), fmt.Sprint(err)
	})
	cli.Close()
	srv.Close()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	_, cli = start()
	await(t, "writes accepted after the restart", 15*time.Second, func() (bool, string) {
		_, err := cli.Put(ctx, "restarted", "v")
		return err == nil, fmt.Sprint(err)
	})
	if n := strings.Count(logs.String(), "accepts writes again"); n != 2 {
		t.Errorf("writes resumed %d times by the guard, want 2 (the restarted guard disarms its alarm):\n%s", n, logs)
	}
	t.Logf("logs:\n%s", logs)
}

// TestDiskGuardLeavesOthersAlarms: a NOSPACE alarm the guard did not raise
// (etcd raises it itself when the database reaches its quota) stays up
// however much disk is free.
func TestDiskGuardLeavesOthersAlarms(t *testing.T) {
	ctx := testCtx(t)
	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		Name: "quota", DataDir: t.TempDir(),
		ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true,
		DiskCheckInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli := etcdtest.NewClient(t, srv.ClientURLs())
	st, err := cli.Status(ctx, srv.ClientURLs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	// Ten more looks of the guard, with plenty of space and the alarm up.
	looks := etcdserver.GuardLooks(srv) + 10
	await(t, "ten looks of the disk guard", 15*time.Second, func() (bool, string) {
		n := etcdserver.GuardLooks(srv)
		return n >= looks, fmt.Sprintf("%d looks", n)
	})
	if _, err := cli.Put(ctx, "k", "v"); !etcdserver.IsNoSpace(err) {
		t.Fatalf("put under someone else's NOSPACE alarm: %v; want no space", err)
	}
	msg := etcdserver.ExplainNoSpace(ctx, etcdkv.New(cli), "")
	if !strings.Contains(msg, "etcd refuses writes") || !strings.Contains(msg, "quota") {
		t.Errorf("ExplainNoSpace without a record = %q; want the quota explanation", msg)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put after disarm: %v", err)
	}
}
