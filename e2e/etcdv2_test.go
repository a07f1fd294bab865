package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// etcdctlBin is Debian's etcdctl (3.4: v2 with ETCDCTL_API=2).
const etcdctlBin = "/usr/bin/etcdctl"

// v2Get GETs a path of machine i's etcd v2 API, anonymously (loopback
// callers may read).
func v2Get(t *testing.T, c *testcluster.Cluster, i int, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + c.Machines[i].EtcdV2 + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// etcdctl runs etcdctl v2 with a clean environment (no ETCDCTL_* of the
// caller's).
func etcdctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(etcdctlBin, args...)
	env := []string{"ETCDCTL_API=2"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ETCDCTL_") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needEtcdctl(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(etcdctlBin); err != nil {
		t.Skipf("%s: %v", etcdctlBin, err)
	}
}

// TestEtcdV2 wires the etcd v2 API: the registry's keys are readable
// through it, etcdctl v2 finds the member and the cluster healthy, writes
// need the admin token.
func TestEtcdV2(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	v2 := "http://" + c.Machines[0].EtcdV2

	t.Run("seed004 services listed", func(t *testing.T) {
		c := c.T(t)
		port := strings.TrimPrefix(freePort(t), "127.0.0.1:")
		unit := writeUnit(t, dir, "kappa-v2.service", fmt.Sprintf(`[Unit]
Description=a service registered in /services
[Service]
ExecStart=/bin/sleep 100000
[X-Service]
Name=kappa-v2
Port=%s
`, port))
		c.MustFleetctl("start", "--no-block", unit)
		key := "/services/kappa-v2/" + c.Machines[0].ID + ":kappa-v2.service:" + port
		c.Await("the endpoint in /v2/keys/services", 60*time.Second, func() (bool, string) {
			code, body := v2Get(t, c, 0, "/v2/keys/services?recursive=true")
			return code == 200 && strings.Contains(body, `"key":"`+key+`"`) && strings.Contains(body, `"value":"127.0.0.1:`+port+`"`), fmt.Sprint(code, " ", body)
		})
		c.MustFleetctl("destroy", "kappa-v2.service")
	})

	t.Run("seed003 etcdctl set in ExecStartPost", func(t *testing.T) {
		needEtcdctl(t)
		c := c.T(t)
		unit := writeUnit(t, dir, "elasticsearch.service", `[Unit]
Description=Kibana and Elasticsearch
[Service]
ExecStart=/bin/sh -c "while true; do echo elasticsearch up; sleep 1; done"
ExecStartPost=/usr/bin/etcdctl set /elasticsearch/host %H
ExecStopPost=/usr/bin/etcdctl rm /elasticsearch/host
`)
		c.MustFleetctl("start", "--no-block", unit)
		host, _ := os.Hostname()
		c.Await("/elasticsearch/host", 60*time.Second, func() (bool, string) {
			out, errs, code := c.Fleetctl("kv", "get", "/elasticsearch/host")
			return code == 0 && strings.TrimSpace(out) == host, out + errs
		})
		if code, body := v2Get(t, c, 0, "/v2/keys/elasticsearch/host"); code != 200 || !strings.Contains(body, `"value":"`+host+`"`) {
			t.Errorf("v2 GET: %d %s", code, body)
		}
		c.MustFleetctl("destroy", "elasticsearch.service")
		c.Await("/elasticsearch/host removed by ExecStopPost", 60*time.Second, func() (bool, string) {
			out, errs, code := c.Fleetctl("kv", "get", "/elasticsearch/host")
			return code != 0, out + errs
		})
	})

	t.Run("etcdctl member list and cluster-health", func(t *testing.T) {
		needEtcdctl(t)
		out, err := etcdctl(t, "--endpoints", v2, "member", "list")
		if err != nil || !strings.Contains(out, "clientURLs="+v2) {
			t.Errorf("member list: %v\n%s", err, out)
		}
		out, err = etcdctl(t, "--endpoints", v2, "cluster-health")
		if err != nil || !strings.Contains(out, "cluster is healthy") || !strings.Contains(out, v2) {
			t.Errorf("cluster-health: %v\n%s", err, out)
		}
	})

	t.Run("writes need the admin token", func(t *testing.T) {
		needEtcdctl(t)
		c := c.T(t)
		out, err := etcdctl(t, "--endpoints", v2, "set", "/app/anon", "1")
		if err == nil || !strings.Contains(out, "110") {
			t.Errorf("anonymous set: %v\n%s", err, out)
		}
		if code, body := v2Get(t, c, 0, "/v2/keys/app/anon"); code != 404 {
			t.Errorf("refused write stored: %d %s", code, body)
		}
		out, err = etcdctl(t, "--endpoints", v2, "--username", "fleet:"+c.Admin, "set", "/app/admin", "1")
		if err != nil {
			t.Fatalf("set with the admin token: %v\n%s", err, out)
		}
		if out, _, code := c.Fleetctl("kv", "get", "/app/admin"); code != 0 || strings.TrimSpace(out) != "1" {
			t.Errorf("fleetctl kv get /app/admin: %d %q", code, out)
		}
	})
}
