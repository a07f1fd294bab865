package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func TestAdminTokenIsRegisteredAndLookedUp(t *testing.T) {
	ctx := t.Context()
	st := store.New(etcdkv.New(etcdtest.New(t)), "")
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	tok, err := adminToken(ctx, st, dir, "m1", log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, AdminTokenFileName))
	if err != nil || strings.TrimSpace(string(b)) != tok {
		t.Fatalf("admin-token file %q %v; want %q", b, err, tok)
	}
	// A restart keeps the token.
	again, err := adminToken(ctx, st, dir, "m1", log)
	if err != nil || again != tok {
		t.Fatalf("restart: %q %v", again, err)
	}
	// Another machine's token is accepted too; the clear token is not in
	// etcd.
	other, err := adminToken(ctx, st, t.TempDir(), "m2", log)
	if err != nil || other == tok {
		t.Fatalf("second machine: %q %v", other, err)
	}
	resp, err := st.KV().Raw().Get(ctx, "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key)+string(kv.Value), tok) {
			t.Fatalf("etcd holds the token in clear: %s", kv.Key)
		}
	}

	now := time.Unix(1000, 0)
	l := newTokenLookup(st, log)
	l.now = func() time.Time { return now }
	for _, tc := range []struct{ tok, want string }{{tok, "admin"}, {other, "admin"}, {"not-a-registered-token-0123", ""}} {
		if got := l.Role(ctx, tc.tok); got != tc.want {
			t.Errorf("Role(%.8s...) = %q; want %q", tc.tok, got, tc.want)
		}
	}
	// An unknown answer is cached briefly: a token registered meanwhile
	// is found once that passes.
	late := "registered-later-0123456789"
	if _, err := st.RegisterToken(ctx, tokenHash(late), store.TokenRecord{Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if got := l.Role(ctx, "not-a-registered-token-0123"); got != "" {
		t.Fatalf("unknown token: %q", got)
	}
	if got := l.Role(ctx, late); got != "admin" {
		t.Fatalf("late token (never asked before): %q", got)
	}
	now = now.Add(unknownTokenTTL + time.Second)
	if got := l.Role(ctx, tok); got != "admin" {
		t.Fatalf("cached known token: %q", got)
	}
}

func TestWarnInsecureEtcdRepeats(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	warnInsecureEtcd(log)
	go func() { _ = repeat(ctx, 10*time.Millisecond, func() { warnInsecureEtcd(log) }); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), "etcd_insecure=true") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("warnings: %q", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
