package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureLBStalledBody: a client of `fleetd lb` that stops sending its
// request body is answered 408 and closed after --body-timeout, and the
// backend connection it held is closed too (before, 1,000 stalled uploads
// held 2,000 fds and 1,000 backend connections for ever).
func TestFailureLBStalledBody(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})

	var opened, closed atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "got %d", len(b))
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	c.MustFleetctl("kv", "set", "/services/kappa-test/"+c.Machines[0].ID+":stall.service:1",
		strings.TrimPrefix(backend.URL, "http://"))

	addr := freePort(t)
	cmd := exec.Command(fleetdBin, "lb", "--listen", addr, "--service", "kappa-test",
		"--etcd-servers", c.EtcdURL, "--cluster-token-file", c.TokenFile, "--debug",
		"--body-timeout", "1s", "--max-conns", "100")
	lbLog, done := startFleetdProcess(t, cmd, "fleetd lb", nil)
	awaitHTTP(t, "http://"+addr+"/", done)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fleetd lb log:\n%s", lbLog)
		}
	})
	base := opened.Load()
	baseClosed := closed.Load()

	for _, tc := range []struct{ name, req string }{
		{"content-length", "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nthe first bytes"},
		{"chunked", "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.req); err != nil {
				t.Fatal(err)
			}
			// Then nothing: the client stalls.
			start := time.Now()
			conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
			if err != nil {
				t.Fatalf("no response to a stalled upload: %v", err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("connection not closed after the 408: %v", err)
			}
			t.Logf("stalled upload closed %v after its last byte (--body-timeout 1s)", time.Since(start).Round(10*time.Millisecond))
		})
	}
	// Each stalled upload had reached the backend, and its backend
	// connection is closed.
	deadline := time.Now().Add(30 * time.Second)
	for closed.Load()-baseClosed < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("backend connections: %d opened, %d closed since the uploads began; want both closed",
				opened.Load()-base, closed.Load()-baseClosed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// fleetd lb still serves.
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "got 5" {
		t.Fatalf("after the stalls: %d %q", resp.StatusCode, b)
	}
}
