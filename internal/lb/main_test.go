package lb

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

func runMain(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestMainBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--service", "web"}, "--listen is required"},
		{[]string{"--listen", ":0"}, "--service is required"},
		{[]string{"--listen", ":0", "--service", "web/x"}, `--service "web/x": invalid name`},
		{[]string{"--listen", ":0", "--service", "we b"}, "invalid name"},
		{[]string{"--listen", "8000", "--service", "web"}, `--listen "8000"`},
		{[]string{"--listen", ":0", "--service", "web", "--mode", "udp"}, `--mode "udp": want http or tcp`},
		{[]string{"--listen", ":0", "--service", "web", "--balance", "random"}, `--balance "random"`},
		{[]string{"--listen", ":0", "--service", "web", "--etcd-servers", "localhost:2379"}, "--etcd-servers"},
		{[]string{"--listen", ":0", "--service", "web", "--services-prefix", "services/"}, "--services-prefix"},
		{[]string{"--listen", ":0", "--service", "web", "--drain-timeout", "soon"}, "--drain-timeout"},
		{[]string{"--listen", ":0", "--service", "web", "--connect-timeout", "0s"}, "--connect-timeout"},
		{[]string{"--listen", ":0", "--service", "web", "--status-addr", "x"}, "--status-addr"},
		{[]string{"--listen", ":0", "--service", "web", "--body-timeout", "-1s"}, "--body-timeout"},
		{[]string{"--listen", ":0", "--service", "web", "--max-conns", "-1"}, "--max-conns"},
		{[]string{"--listen", ":0", "--service", "web", "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"-bogus"}, "unknown flag: --bogus"},
		{[]string{"--listen"}, "flag needs an argument: --listen"},
		{[]string{"--listen", ":0", "--service", "web", "--max-conns", "many"}, `invalid argument "many" for "--max-conns"`},
		// Single dashes work like double ones: this reaches the --mode check.
		{[]string{"-listen", ":0", "-service=web", "-mode", "udp"}, `--mode "udp": want http or tcp`},
		{[]string{"--listen", ":0", "--service", "web", "--etcd-certfile", "c.pem"}, "--etcd-certfile and --etcd-keyfile go together"},
	}
	for _, c := range cases {
		code, _, stderr := runMain(c.args...)
		if code != 2 || !strings.Contains(stderr, c.msg) || !strings.Contains(stderr, "fleetd lb --help") {
			t.Errorf("Main(%q) = %d, stderr %q; want 2 and %q", c.args, code, stderr, c.msg)
		}
	}
}

func TestMainHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		var stdout, stderr bytes.Buffer
		env := []string{"FLEET_ETCD_PASSWORD=s3cret"}
		code := Main(context.Background(), []string{"--listen", ":0", arg, "--bogus"}, env, &stdout, &stderr)
		if code != 0 || stderr.Len() != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"Usage: fleetd lb", "\nFlags:\n", "--listen ADDR", "--service NAME", "--mode", "--balance",
			"--etcd-servers URLs", "--services-prefix", "--drain-timeout", "--connect-timeout", "--status-addr", "--etcd-timeout",
			"FLEET_ETCD_SERVERS", "--body-timeout", "--max-conns", "-h, --help",
			// etcd TLS, token and user, with what they are for.
			"--etcd-cafile file", "FLEET_ETCD_CAFILE", "--etcd-certfile file", "--etcd-keyfile file",
			"--cluster-token-file file", "FLEET_CLUSTER_TOKEN_FILE", "cluster-token file", "--etcd-username user",
			"--etcd-password password", "FLEET_ETCD_PASSWORD", "--etcd-insecure"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: help lacks %q", arg, want)
			}
		}
		if strings.Contains(out, "s3cret") {
			t.Errorf("%s: help shows the password of the environment", arg)
		}
		for _, line := range strings.Split(out[strings.Index(out, "Flags:"):], "\n")[1:] {
			if f := strings.TrimSpace(line); strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "--") && !strings.HasPrefix(f, "-h, --help") {
				t.Errorf("%s: single-dash flag in help: %q", arg, line)
			}
		}
	}
}

func TestMainEtcdTimeout(t *testing.T) {
	dead := "http://" + refusedAddr(t)
	code, _, stderr := runMain("--listen", "127.0.0.1:0", "--service", "web", "--etcd-servers", dead, "--etcd-timeout", "700ms")
	if code != 1 || !strings.Contains(stderr, "not reachable within --etcd-timeout") || !strings.Contains(stderr, dead) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "etcd unreachable, retrying") {
		t.Fatalf("no progress line; stderr:\n%s", stderr)
	}
}

func TestMainEndToEnd(t *testing.T) {
	for _, mode := range []string{"http", "tcp"} {
		t.Run(mode, func(t *testing.T) {
			_, endpoints := etcdtest.NewServer(t)
			kv := etcdKV{t, etcdtest.NewClient(t, endpoints)}
			listen, status := refusedAddr(t), refusedAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			var stderr syncBuf
			done := make(chan int, 1)
			go func() {
				done <- Main(ctx, []string{"--listen", listen, "--service", "web", "--mode", mode,
					"--status-addr", status, "--drain-timeout", "2s"},
					[]string{"FLEET_ETCD_SERVERS=" + strings.Join(endpoints, ",")}, &bytes.Buffer{}, &stderr)
			}()
			defer func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("Main exit %d; stderr:\n%s", code, stderr.String())
				}
			}()
			var want string
			if mode == "http" {
				srv := httpBackend(t, "hello", nil)
				kv.put("/services/web/m1:hello:80", hostPort(srv.URL))
				want = "hello"
				eventually(t, "proxied answer", func() bool {
					resp, err := http.Get("http://" + listen + "/")
					if err != nil {
						return false
					}
					defer resp.Body.Close()
					var b bytes.Buffer
					b.ReadFrom(resp.Body)
					return resp.StatusCode == 200 && b.String() == want
				})
			} else {
				addr, _ := tcpBackend(t, "hello")
				kv.put("/services/web/m1:hello:80", addr)
				eventually(t, "proxied greeting", func() bool {
					c, err := netDialTimeout(listen)
					if err != nil {
						return false
					}
					defer c.Close()
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					buf := make([]byte, 6)
					n, _ := c.Read(buf)
					return string(buf[:n]) == "hello\n"
				})
			}
			resp, err := http.Get("http://" + status + "/status")
			if err != nil {
				t.Fatal(err)
			}
			var st Status
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil || st.Service != "web" || st.Mode != mode || !st.Synced || len(st.Backends) != 1 ||
				st.Backends[0].ID != "m1:hello:80" || st.Backends[0].Total == 0 {
				t.Fatalf("status = %+v, %v", st, err)
			}
		})
	}
}
