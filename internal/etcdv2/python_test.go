package etcdv2_test

import (
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const pythonScript = `
import sys, threading, time, etcd
u = sys.argv[1]
host, port = u.split("//")[1].split(":")
c = etcd.Client(host=host, port=int(port))
r = c.write("/py/a", "one")
assert r.value == "one" and r.action == "set", r
assert c.read("/py/a").value == "one"
try:
    c.write("/py/a", "two", prevExist=False)
    raise SystemExit("create of an existing key succeeded")
except etcd.EtcdAlreadyExist:
    pass
try:
    c.read("/py/missing")
    raise SystemExit("read of a missing key succeeded")
except etcd.EtcdKeyNotFound:
    pass
c.write("/py/a", "two", prevValue="one")
d = c.read("/py", recursive=True)
assert d.dir and [ch.key for ch in d.children] == ["/py/a"], d
idx = c.read("/py/a").modifiedIndex
def later():
    time.sleep(0.5)
    c.write("/py/a", "three")
threading.Thread(target=later).start()
w = c.read("/py/a", wait=True, waitIndex=idx + 1, timeout=10)
assert w.value == "three", w
c.write("/py/ttl", "x", ttl=1)
assert c.read("/py/ttl").ttl is not None
deadline = time.time() + 10
while True:
    try:
        c.read("/py/ttl")
    except etcd.EtcdKeyNotFound:
        break
    if time.time() > deadline:
        raise SystemExit("ttl key did not expire")
    time.sleep(0.2)
c.delete("/py", recursive=True)
print("ok")
`

// TestPythonEtcd drives the handler with python-etcd (read, write, wait,
// ttl).
func TestPythonEtcd(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no %s: %v", py, err)
	}
	if out, err := exec.Command(py, "-c", "import etcd").CombinedOutput(); err != nil {
		t.Skipf("python-etcd is not installed: %v %s", err, out)
	}
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	out, err := exec.Command(py, "-c", pythonScript, "http://"+u.Host).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python-etcd: %v\n%s", err, out)
	}
}
