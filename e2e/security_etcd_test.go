package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/testcluster"
)

// rootClient is an etcd client with the cluster token: the oracle of what
// etcd really holds.
func rootClient(t *testing.T, endpoints []string, tokenFile string) *clientv3.Client {
	t.Helper()
	tok, _, err := clusterauth.ReadToken(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := clusterauth.Credentials{Endpoints: endpoints, Token: tok}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: r.Username, Password: r.Password, TLS: r.TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// gatewayCall posts body to etcd's JSON gateway (curl's way) and returns the
// status and body.
func gatewayCall(t *testing.T, hc *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecurityEtcdRefusesAnonymousClients: with no security flag at all,
// the embedded etcd stores nothing and shows nothing to a caller without
// the cluster token, over its plain loopback URL and over https.
func TestSecurityEtcdRefusesAnonymousClients(t *testing.T) {
	httpsURL := "https://" + freePort(t)
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	// A unit record written the way issue #7's attacker did: it must not
	// be stored, so nothing can run it.
	unitKey := "/_coreos.com/fleet/units/evil.service"
	put := `{"key":"` + b64(unitKey) + `","value":"` + b64(`{"name":"evil.service","desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/touch /tmp/pwned"}]}`) + `"}`
	rng := `{"key":"` + b64("/") + `","range_end":"` + b64("0") + `"}`

	t.Run("plain loopback", func(t *testing.T) {
		code, body := gatewayCall(t, http.DefaultClient, c.EtcdURL+"/v3/kv/put", put)
		t.Logf("anonymous put: %d %s", code, body)
		code, body = gatewayCall(t, http.DefaultClient, c.EtcdURL+"/v3/kv/range", rng)
		if strings.Contains(body, `"kvs"`) {
			t.Fatalf("anonymous range read returned keys: %d %s", code, body)
		}
		root := rootClient(t, []string{c.EtcdURL}, c.TokenFile)
		gr, err := root.Get(context.Background(), unitKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(gr.Kvs) != 0 {
			t.Fatalf("the anonymous put stored %s", unitKey)
		}
		gr, err = root.Get(context.Background(), "/_coreos.com/fleet/machines/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || gr.Count == 0 {
			t.Fatalf("the root client sees no machines (%v): is it reading the right etcd?", err)
		}
		// And nothing runs it.
		if out, _, _ := c.Fleetctl("list-units", "--no-legend"); strings.Contains(out, "evil") {
			t.Fatalf("list-units shows the anonymous unit:\n%s", out)
		}
	})

	t.Run("https", func(t *testing.T) {
		dir := t.TempDir()
		peerURL := "https://" + freePort(t) // the default scheme of etcd_listen_peer
		cmd := exec.Command(fleetdBin, "--data-dir", dir, "--machine-id", strings.Repeat("e", 32),
			"--api-addr", freePort(t), "--etcd-listen-client", httpsURL, "--etcd-listen-peer", peerURL)
		cmd.Env = append(os.Environ(), "FLEET_LOG_FORMAT=text")
		log, done := startFleetdProcess(t, cmd, "fleetd (https etcd)", nil)
		tokenFile := filepath.Join(dir, "cluster-token")
		awaitFile(t, filepath.Join(dir, "admin-token"), done, log)
		// A client that does not know the cluster's CA cannot even
		// connect; one that skips verification still gets nothing.
		if _, err := http.Post(httpsURL+"/v3/kv/put", "application/json", strings.NewReader(put)); err == nil {
			t.Fatal("a client without the cluster's CA trusted the member")
		}
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		code, body := gatewayCall(t, insecure, httpsURL+"/v3/kv/put", put)
		t.Logf("anonymous put over https: %d %s", code, body)
		if _, body = gatewayCall(t, insecure, httpsURL+"/v3/kv/range", rng); strings.Contains(body, `"kvs"`) {
			t.Fatalf("anonymous range read over https returned keys: %s", body)
		}
		root := rootClient(t, []string{httpsURL}, tokenFile)
		gr, err := root.Get(context.Background(), unitKey)
		if err != nil {
			t.Fatalf("root client over derived TLS: %v", err)
		}
		// A machine that joins over https without the token cannot
		// verify the member, and is told which flag to pass.
		jctx, jcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer jcancel()
		out, err := exec.CommandContext(jctx, fleetdBin, "--data-dir", t.TempDir(), "--machine-id", strings.Repeat("c", 32),
			"--api-addr", freePort(t), "--etcd-servers", httpsURL).CombinedOutput()
		if err == nil || jctx.Err() != nil || !strings.Contains(string(out), "--cluster-token-file") || !strings.Contains(string(out), "does not verify") {
			t.Errorf("joining over https without the token: %v\n%s", err, out)
		}
		// The peer port talks only to members: a client without a
		// certificate of the cluster's CA does not get through the
		// handshake.
		if resp, err := insecure.Get(peerURL + "/members"); err == nil {
			resp.Body.Close()
			t.Fatalf("the peer URL answered a caller without a member certificate: %s", resp.Status)
		}
		if len(gr.Kvs) != 0 {
			t.Fatal("the anonymous https put stored the unit")
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// awaitFile waits until fleetd has written path.
func awaitFile(t *testing.T, path string, done <-chan struct{}, log *syncWriter) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("fleetd exited before writing %s:\n%s", path, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("fleetd did not write %s:\n%s", path, log)
}

// TestSecuritySecretsArePrivate: under umask 000 the token files are 0600
// and the etcd data and certificate directories 0700.
func TestSecuritySecretsArePrivate(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	cmd := exec.Command(fleetdBin, "--data-dir", dir, "--machine-id", strings.Repeat("f", 32),
		"--api-addr", freePort(t)+",unix://"+filepath.Join(dir, "fleet.sock"),
		"--etcd-listen-client", "https://"+freePort(t), "--etcd-listen-peer", "http://"+freePort(t))
	log, done := startFleetdProcess(t, cmd, "fleetd (umask 000)", nil)
	syscall.Umask(old)
	awaitFile(t, filepath.Join(dir, "fleet.sock"), done, log)
	for path, want := range map[string]os.FileMode{
		"cluster-token":      0o600,
		"admin-token":        0o600,
		"etcd":               0o700,
		"tls":                0o700,
		"tls/member-key.pem": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v; want %v", path, fi.Mode().Perm(), want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "fleet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("the unix socket is %v under umask 000: others may connect", fi.Mode().Perm())
	}
}

// TestSecurityJoinNeedsTheClusterToken: joining a secured etcd without the
// token, or with another one, fails at once with a message that names the
// flag; plain HTTP beyond loopback is refused before anything starts.
func TestSecurityJoinNeedsTheClusterToken(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	wrong := filepath.Join(t.TempDir(), "wrong-token")
	if err := clusterauth.WriteToken(wrong, "not-the-cluster-token-at-all"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"no token", []string{"--etcd-servers", c.EtcdURL},
			[]string{"requires authentication", "--cluster-token-file"}},
		{"wrong token", []string{"--etcd-servers", c.EtcdURL, "--cluster-token-file", wrong},
			[]string{"refused the cluster token of " + wrong, "not this cluster's token"}},
		{"missing token file", []string{"--etcd-servers", c.EtcdURL, "--cluster-token-file", wrong + ".missing"},
			[]string{"cluster_token_file " + wrong + ".missing does not exist"}},
		{"plain etcd beyond loopback", []string{"--etcd-listen-client", "http://0.0.0.0:0"},
			[]string{"plain HTTP beyond loopback", "https://0.0.0.0:0", "etcd_insecure"}},
		{"plain etcd servers beyond loopback", []string{"--etcd-servers", "http://192.0.2.1:2379"},
			[]string{"plain HTTP beyond loopback", "cluster_token_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir(), "--machine-id", strings.Repeat("d", 32), "--api-addr", freePort(t)}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, fleetdBin, args...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("fleetd did not fail at once:\n%s", out)
			}
			if err == nil {
				t.Fatalf("fleetd exited 0:\n%s", out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// fleetd lb without the token fails at once the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, fleetdBin, "lb", "--listen", freePort(t), "--service", "x",
		"--etcd-servers", c.EtcdURL).CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "--cluster-token-file") {
		t.Errorf("fleetd lb without a token: %v\n%s", err, out)
	}
}

// TestSecurityHTTPSMembersShareTheToken: three embedded members on https
// peer and client URLs with certificates derived from one token file form a
// cluster; a member with another token cannot join it.
func TestSecurityHTTPSMembersShareTheToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "cluster-token")
	if err := clusterauth.WriteToken(tokenFile, "shared-token-of-three-members"); err != nil {
		t.Fatal(err)
	}
	type member struct{ name, client, peer, api string }
	ms := make([]member, 3)
	var initial []string
	for i := range ms {
		ms[i] = member{name: "m" + string(rune('1'+i)), client: "https://" + freePort(t), peer: "https://" + freePort(t), api: freePort(t)}
		initial = append(initial, ms[i].name+"="+ms[i].peer)
	}
	var logs []*syncWriter
	var dones []chan struct{}
	for i, m := range ms {
		cmd := exec.Command(fleetdBin, "--data-dir", filepath.Join(dir, m.name), "--machine-id", strings.Repeat(string(rune('a'+i)), 32),
			"--api-addr", m.api, "--public-ip", "127.0.0.1", "--cluster-token-file", tokenFile,
			"--etcd-name", m.name, "--etcd-initial-cluster", strings.Join(initial, ","),
			"--etcd-listen-client", m.client, "--etcd-listen-peer", m.peer, "--agent-ttl", "3s")
		log, done := startFleetdProcess(t, cmd, "fleetd "+m.name, nil)
		logs, dones = append(logs, log), append(dones, done)
	}
	for i, m := range ms {
		awaitFile(t, filepath.Join(dir, m.name, "admin-token"), dones[i], logs[i])
	}
	root := rootClient(t, []string{ms[0].client, ms[1].client, ms[2].client}, tokenFile)
	deadline := time.Now().Add(60 * time.Second)
	for {
		gr, err := root.Get(context.Background(), "/_coreos.com/fleet/machines/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && gr.Count == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 machines not registered over derived TLS: %v %v\n%s", gr, err, logs[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
	ml, err := root.MemberList(context.Background())
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("members %v %v", ml, err)
	}

	// An impostor with another token, announced as a fourth member, cannot
	// talk to the peers: their certificates do not verify.
	other := filepath.Join(dir, "other-token")
	if err := clusterauth.WriteToken(other, "another-token-entirely-0123"); err != nil {
		t.Fatal(err)
	}
	peer4 := "https://" + freePort(t)
	// etcd refuses member changes for a few seconds after members
	// (re)connect ("unhealthy cluster").
	for start := time.Now(); ; time.Sleep(500 * time.Millisecond) {
		_, err := root.MemberAddAsLearner(context.Background(), []string{peer4})
		if err == nil {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("member add: %v", err)
		}
	}
	cmd := exec.Command(fleetdBin, "--data-dir", filepath.Join(dir, "m4"), "--machine-id", strings.Repeat("9", 32),
		"--api-addr", freePort(t), "--cluster-token-file", other,
		"--etcd-name", "m4", "--etcd-initial-cluster", strings.Join(append(initial, "m4="+peer4), ","),
		"--etcd-initial-cluster-state", "existing",
		"--etcd-listen-client", "https://"+freePort(t), "--etcd-listen-peer", peer4)
	log4, done4 := startFleetdProcess(t, cmd, "fleetd impostor", nil)
	select {
	case <-done4:
	case <-time.After(20 * time.Second):
	}
	if _, err := os.Stat(filepath.Join(dir, "m4", "admin-token")); err == nil {
		t.Fatalf("the impostor joined and registered:\n%s", log4)
	}
	gr, err := root.Get(context.Background(), "/_coreos.com/fleet/machines/"+strings.Repeat("9", 32))
	if err != nil || len(gr.Kvs) != 0 {
		t.Fatalf("the impostor's machine record: %v %v", gr.Kvs, err)
	}
}

// TestSecurityEtcdInsecureIsExplicit: etcd_insecure=true is fleet's old
// behaviour (no etcd authentication, no cluster token), and fleetd says so.
func TestSecurityEtcdInsecureIsExplicit(t *testing.T) {
	dir := t.TempDir()
	etcdURL := "http://" + freePort(t)
	cmd := exec.Command(fleetdBin, "--data-dir", dir, "--machine-id", strings.Repeat("b", 32),
		"--api-addr", freePort(t), "--etcd-listen-client", etcdURL, "--etcd-listen-peer", "http://"+freePort(t), "--etcd-insecure")
	log, done := startFleetdProcess(t, cmd, "fleetd (etcd_insecure)", nil)
	awaitFile(t, filepath.Join(dir, "admin-token"), done, log)
	if _, err := os.Stat(filepath.Join(dir, "cluster-token")); err == nil {
		t.Error("etcd_insecure wrote a cluster token")
	}
	code, body := gatewayCall(t, http.DefaultClient, etcdURL+"/v3/kv/put", `{"key":"`+b64("/open")+`","value":"`+b64("v")+`"}`)
	if code != http.StatusOK || strings.Contains(body, "error") {
		t.Errorf("anonymous put with etcd_insecure: %d %s", code, body)
	}
	if !strings.Contains(log.String(), "etcd_insecure=true: etcd has no authentication") {
		t.Errorf("no warning logged:\n%s", log)
	}
}
