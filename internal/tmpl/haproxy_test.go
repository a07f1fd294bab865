package tmpl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHAProxyExample renders examples/haproxy with two registered backends
// and validates the result with haproxy itself.
func TestHAProxyExample(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy), so the example template cannot be validated:", err)
	}
	example := filepath.Join("..", "..", "examples", "haproxy")
	data, err := os.ReadFile(filepath.Join(example, "conf.d", "haproxy.toml"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ParseResource("haproxy.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rc.CheckCmd, "haproxy -c") || !strings.Contains(rc.ReloadCmd, "-sf") || !strings.Contains(rc.ReloadCmd, "-x") {
		t.Errorf("example check_cmd %q / reload_cmd %q", rc.CheckCmd, rc.ReloadCmd)
	}

	f := newFixture(t, nil)
	tmpl, err := os.ReadFile(filepath.Join(example, "templates", rc.Src))
	if err != nil {
		t.Fatal(err)
	}
	f.writeTemplate(rc.Src, string(tmpl))
	rc.Dest = f.out("haproxy.cfg")
	rc.ReloadCmd = "" // nothing to reload here; check_cmd (haproxy -c) stays

	f.put("/services/web/host1:web:80", "10.0.0.1:8080")
	f.put("/services/web/host2:web:80", `{"host": "10.0.0.2", "port": 8080}`)
	f.put("/services/api/host1:api:9000", "10.0.0.3:9000")
	// fleet's own registrations name template units: '@' is not allowed
	// in a haproxy server name.
	f.put("/services/web/host1:web@3.service:80", "10.0.0.4:8080")
	f.put("/haproxy/default_service", "web")
	f.put("/haproxy/ports/api", "18081")

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HAPROXY_HTTP_BIND=127.0.0.1:18080",
		"HAPROXY_STATS_SOCKET=" + f.out("admin.sock"),
	}
	d, err := NewWithResources(f.kv, Options{ConfDir: f.confDir, Env: env, Logger: testLogger(t)}, []*ResourceConfig{rc})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Once(f.ctx()); err != nil {
		t.Fatal(err)
	}
	cfg := f.read(rc.Dest)
	t.Logf("rendered haproxy.cfg:\n%s", cfg)
	for _, want := range []string{
		"backend be_web\n",
		"    server host1:web:80 10.0.0.1:8080 check\n",
		"    server host2:web:80 10.0.0.2:8080 check\n",
		"    server host1:web_3.service:80 10.0.0.4:8080 check\n",
		"backend be_api\n",
		"    server host1:api:9000 10.0.0.3:9000 check\n",
		"frontend fe_api\n    bind *:18081\n",
		"default_backend be_web\n",
		"bind 127.0.0.1:18080\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("rendered config lacks %q", want)
		}
	}
	out, err := exec.CommandContext(f.ctx(), haproxy, "-c", "-f", rc.Dest).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f: %v\n%s", err, out)
	}
	t.Logf("haproxy -c: %s", strings.TrimSpace(string(out)))

	// A broken registration (not an address) fails check_cmd: the valid
	// config stays.
	f.put("/services/web/host3:web:80", "not an address")
	err = d.Once(f.ctx())
	if err == nil || !strings.Contains(err.Error(), "check_cmd failed") {
		t.Fatalf("error %v, want check_cmd failure", err)
	}
	if f.read(rc.Dest) != cfg {
		t.Error("config changed despite the failed check")
	}
}
