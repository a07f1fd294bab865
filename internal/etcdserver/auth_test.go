package etcdserver_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/etcdserver"
)

func startWithPassword(t *testing.T, dir, pw string, clientURL, peerURL string, client, peer etcdserver.TLSFiles) (*etcdserver.Server, error) {
	t.Helper()
	return etcdserver.Start(testCtx(t), etcdserver.Config{
		Name: "a", DataDir: dir,
		ListenClientURLs: []string{clientURL}, ListenPeerURLs: []string{peerURL},
		TickMs: 10, ElectionMs: 100, UnsafeNoFsync: true,
		RootPassword: pw, ClientTLS: client, PeerTLS: peer,
	})
}

func TestRootPasswordEnablesAuthentication(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	const pw = "0123456789abcdef-token"
	srv, err := startWithPassword(t, dir, pw, "http://127.0.0.1:0", "http://127.0.0.1:0", etcdserver.TLSFiles{}, etcdserver.TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	ep := srv.ClientURLs()

	// Anonymous gRPC: nothing stored, nothing read.
	anon, err := clientv3.New(clientv3.Config{Endpoints: ep, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Put(ctx, "/_coreos.com/fleet/units/x.service", "{}"); err == nil {
		t.Fatal("anonymous put succeeded")
	}
	if _, err := anon.Get(ctx, "/", clientv3.WithPrefix()); err == nil {
		t.Fatal("anonymous range read succeeded")
	}
	// Anonymous HTTP gateway (curl's way).
	resp, err := http.Post(ep[0]+"/v3/kv/put", "application/json", strings.NewReader(`{"key":"Zm9v","value":"YmFy"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "error") {
		t.Fatalf("anonymous gateway put: %d %s", resp.StatusCode, body)
	}

	root, err := clientv3.New(clientv3.Config{Endpoints: ep, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: "root", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("root put: %v", err)
	}
	gr, err := root.Get(ctx, "", clientv3.WithPrefix())
	if err != nil || len(gr.Kvs) != 1 || string(gr.Kvs[0].Key) != "k" {
		t.Fatalf("root read: %v %v (the anonymous gateway put must not have stored foo)", gr, err)
	}
	root.Close()
	if _, err := clientv3.New(clientv3.Config{Endpoints: ep, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: "root", Password: "wrong-password-123"}); err == nil {
		t.Fatal("wrong password accepted")
	}
	srv.Close()

	// A restart with the same password works; with another it is refused.
	srv, err = startWithPassword(t, dir, pw, "http://127.0.0.1:0", "http://127.0.0.1:0", etcdserver.TLSFiles{}, etcdserver.TLSFiles{})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	srv.Close()
	_, err = startWithPassword(t, dir, "another-token-0123456", "http://127.0.0.1:0", "http://127.0.0.1:0", etcdserver.TLSFiles{}, etcdserver.TLSFiles{})
	if !errors.Is(err, etcdserver.ErrWrongRootPassword) {
		t.Fatalf("restart with another password: %v; want ErrWrongRootPassword", err)
	}
}

func TestDerivedCertificatesServeTLS(t *testing.T) {
	ctx := testCtx(t)
	tok, err := clusterauth.GenerateToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := clusterauth.DeriveAuthority(tok)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), clusterauth.Hosts(nil), time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tf := etcdserver.TLSFiles{CertFile: files.CertFile, KeyFile: files.KeyFile}
	pf := etcdserver.TLSFiles{CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile}
	srv, err := startWithPassword(t, t.TempDir(), tok, "https://127.0.0.1:0", "https://127.0.0.1:0", tf, pf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	creds := clusterauth.Credentials{Endpoints: srv.ClientURLs(), Token: tok}
	r, err := creds.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientURLs(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: r.Username, Password: r.Password, TLS: r.TLS})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put over derived TLS: %v", err)
	}
	// Another token's CA does not verify this member.
	other, _ := clusterauth.GenerateToken(rand.Reader)
	r2, err := clusterauth.Credentials{Endpoints: srv.ClientURLs(), Token: other}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: r2.TLS}, Timeout: 5 * time.Second}
	if resp, err := hc.Get(srv.ClientURLs()[0] + "/version"); err == nil {
		resp.Body.Close()
		t.Fatal("a client with another token's CA trusted the member")
	}
}

// BenchmarkKeepAliveOnce measures one lease renewal (fleetd's presence
// renews with KeepAliveOnce) with and without authentication: clientv3
// authenticates for every stream it opens, so the root password's bcrypt
// cost is paid on each renewal (see RootPassword).
func BenchmarkKeepAliveOnce(b *testing.B) {
	for _, pw := range []string{"", "0123456789abcdef-token"} {
		name := "no-auth"
		if pw != "" {
			name = "auth"
		}
		b.Run(name, func(b *testing.B) {
			srv, err := etcdserver.Start(b.Context(), etcdserver.Config{Name: "a", DataDir: b.TempDir(),
				ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
				UnsafeNoFsync: true, RootPassword: pw})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cfg := clientv3.Config{Endpoints: srv.ClientURLs(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
			if pw != "" {
				cfg.Username, cfg.Password = etcdserver.RootUser, pw
			}
			cli, err := clientv3.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			lease, err := cli.Grant(b.Context(), 30)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := cli.KeepAliveOnce(b.Context(), lease.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
