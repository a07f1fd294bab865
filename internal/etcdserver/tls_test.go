package etcdserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/auth/authtest"
	"github.com/fleetd/fleet/internal/etcdserver"
)

func tlsClient(t *testing.T, endpoints []string, caFile, certFile, keyFile string) *clientv3.Client {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RootCAs = x509.NewCertPool()
	cfg.RootCAs.AppendCertsFromPEM(pem)
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 3 * time.Second, TLS: cfg, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A member with client TLS and client-certificate authentication: a client
// with a certificate of the CA works, one without is refused.
func TestClientTLSRequiresClientCert(t *testing.T) {
	ctx := testCtx(t)
	ca := authtest.NewCA(t, "etcd-ca")
	srvCert, srvKey := ca.Issue(t, "server", authtest.Cert{CommonName: "etcd"})
	cliCert, cliKey := ca.Issue(t, "client", authtest.Cert{CommonName: "fleetd"})
	other := authtest.NewCA(t, "other-ca")
	badCert, badKey := other.Issue(t, "bad", authtest.Cert{CommonName: "intruder"})

	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		Name:             "tls1",
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{"https://127.0.0.1:0"},
		ListenPeerURLs:   []string{"https://127.0.0.1:0"},
		ClientTLS:        etcdserver.TLSFiles{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.CAFile},
		PeerTLS:          etcdserver.TLSFiles{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.CAFile},
		TickMs:           10,
		ElectionMs:       100,
		UnsafeNoFsync:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if u := srv.ClientURLs()[0]; u[:8] != "https://" {
		t.Fatalf("client URL %s: want https", u)
	}

	good := tlsClient(t, srv.ClientURLs(), ca.CAFile, cliCert, cliKey)
	if _, err := good.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with a client certificate: %v", err)
	}
	for name, cli := range map[string]*clientv3.Client{
		"no certificate":    tlsClient(t, srv.ClientURLs(), ca.CAFile, "", ""),
		"foreign authority": tlsClient(t, srv.ClientURLs(), ca.CAFile, badCert, badKey),
	} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Get(cctx, "k")
		cancel()
		if err == nil {
			t.Errorf("%s: get succeeded, want refusal", name)
		}
	}
}

// Two members talking TLS to each other with peer certificates.
func TestPeerTLSCluster(t *testing.T) {
	ctx := testCtx(t)
	ca := authtest.NewCA(t, "etcd-ca")
	cert, key := ca.Issue(t, "member", authtest.Cert{CommonName: "member"})
	files := etcdserver.TLSFiles{CertFile: cert, KeyFile: key, CAFile: ca.CAFile}
	peers := []string{"https://" + freePort(t), "https://" + freePort(t)}
	clients := []string{"https://" + freePort(t), "https://" + freePort(t)}
	cluster := fmt.Sprintf("p1=%s,p2=%s", peers[0], peers[1])
	srvs := make([]*etcdserver.Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			srvs[i], errs[i] = etcdserver.Start(ctx, etcdserver.Config{
				Name:             fmt.Sprintf("p%d", i+1),
				DataDir:          t.TempDir(),
				ListenClientURLs: []string{clients[i]},
				ListenPeerURLs:   []string{peers[i]},
				InitialCluster:   cluster,
				ClientTLS:        files,
				PeerTLS:          files,
				TickMs:           10,
				ElectionMs:       100,
				UnsafeNoFsync:    true,
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i+1, err)
		}
		t.Cleanup(func() { srvs[i].Close() })
	}
	c1 := tlsClient(t, []string{clients[0]}, ca.CAFile, cert, key)
	c2 := tlsClient(t, []string{clients[1]}, ca.CAFile, cert, key)
	if _, err := c1.Put(ctx, "shared", "yes"); err != nil {
		t.Fatal(err)
	}
	resp, err := c2.Get(ctx, "shared")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "yes" {
		t.Fatalf("get from the other member: %v %v", resp, err)
	}
	ml, err := c1.MemberList(ctx)
	if err != nil || len(ml.Members) != 2 {
		t.Fatalf("members: %v %v", ml, err)
	}
}
