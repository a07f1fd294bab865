package e2e

// Bad input end to end, on a one-machine cluster: through fleetctl (unit
// files it must refuse, names the API must refuse, forbidden [X-Fleet]
// combinations) and through raw HTTP to fleetd's API. Every case must give
// a clear error (fleetctl: non-zero exit and a message naming the problem;
// API: the status code and fleet's error envelope) and store nothing.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/testcluster"
)

// apiCall sends one request to machine 0's API and returns the status,
// the Content-Type and the body.
func apiCall(t *testing.T, c *testcluster.Cluster, method, path, contentType string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.Machines[0].APIURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// Anonymous callers may only read: send the admin token.
	req.Header.Set("Authorization", "Bearer "+adminTokenOf(t, c.Machines[0]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// expectAPIError checks fleet's error envelope
// {"error":{"code":N,"message":"..."}} with N == want and a message that
// contains msgPart.
func expectAPIError(t *testing.T, c *testcluster.Cluster, method, path, contentType string, body []byte, want int, msgPart string) {
	t.Helper()
	code, ct, b := apiCall(t, c, method, path, contentType, body)
	shown := string(b)
	if len(shown) > 300 {
		shown = shown[:300] + "..."
	}
	if code != want {
		t.Errorf("%s %s: status %d, want %d; body %s", method, path, code, want, shown)
		return
	}
	if !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var env struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Error == nil {
		t.Errorf("%s %s: body is not fleet's error envelope: %s (%v)", method, path, shown, err)
		return
	}
	if env.Error.Code != want {
		t.Errorf("%s %s: envelope code %d, want %d", method, path, env.Error.Code, want)
	}
	if env.Error.Message == "" || !strings.Contains(env.Error.Message, msgPart) {
		t.Errorf("%s %s: message %q does not contain %q", method, path, env.Error.Message, msgPart)
	}
	t.Logf("%s %s -> %d %s", method, path, code, env.Error.Message)
}

// expectNothingStored checks that the registry has no unit at all, through
// fleetctl and the API.
func expectNothingStored(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	if out := c.MustFleetctl("list-unit-files", "--no-legend"); out != "" {
		t.Errorf("list-unit-files shows stored units:\n%s", out)
	}
	code, _, b := apiCall(t, c, "GET", "/fleet/v1/units", "", nil)
	if code != 200 || strings.TrimSpace(string(b)) != "{}" {
		t.Errorf("GET /fleet/v1/units = %d %s, want 200 {}", code, b)
	}
}

// expectFleetctlError runs fleetctl and checks a non-zero exit with every
// one of parts in stderr.
func expectFleetctlError(t *testing.T, c *testcluster.Cluster, args []string, parts ...string) {
	t.Helper()
	out, errOut, code := c.Fleetctl(args...)
	shown := strings.Join(args, " ")
	if len(shown) > 200 {
		shown = shown[:200] + "..."
	}
	if code == 0 {
		t.Errorf("fleetctl %s: exit 0, want an error\nstdout:\n%s\nstderr:\n%s", shown, out, errOut)
		return
	}
	for _, p := range parts {
		if !strings.Contains(errOut, p) {
			t.Errorf("fleetctl %s: stderr lacks %q:\n%s", shown, p, errOut)
		}
	}
	t.Logf("fleetctl %s -> exit %d: %s", shown, code, strings.TrimSpace(errOut))
}

// unitJSON is a PUT body for a unit with these options.
func unitJSON(t *testing.T, name, desired string, opts ...[3]string) []byte {
	t.Helper()
	type opt struct {
		Section string `json:"section"`
		Name    string `json:"name"`
		Value   string `json:"value"`
	}
	u := struct {
		Name         string `json:"name,omitempty"`
		DesiredState string `json:"desiredState,omitempty"`
		Options      []opt  `json:"options,omitempty"`
	}{Name: name, DesiredState: desired}
	for _, o := range opts {
		u.Options = append(u.Options, opt{o[0], o[1], o[2]})
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var execTrue = [3]string{"Service", "ExecStart", "/bin/true"}

func TestBadInput(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	machineID := c.Machines[0].ID
	expectNothingStored(t, c)

	t.Run("fleetctl/unit-files", func(t *testing.T) {
		c := c.T(t)
		big := "[Service]\nExecStart=/bin/true\n" + strings.Repeat("Environment=PAD="+strings.Repeat("x", 1000)+"\n", 1100)
		binary := []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00\x01\x00\x00\x00\xff\xfe")
		cases := []struct {
			name  string
			body  []byte
			parts []string
		}{
			{"nosection.service", []byte("Description=no section\nExecStart=/bin/true\n"), []string{"nosection.service", "section"}},
			{"noequals.service", []byte("[Service]\nExecStart=/bin/true\nthis line has no equals sign\n"), []string{"noequals.service", "line 3"}},
			{"big.service", []byte(big), []string{"big.service", fmt.Sprint(len(big)), "limit"}},
			{"binary.service", binary, []string{"binary.service", "binary"}},
			{"latin1.service", []byte("[Service]\nExecStart=/bin/echo \xe9t\xe9\n"), []string{"latin1.service", "line 2", "UTF-8"}},
		}
		for _, tc := range cases {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.body, 0o644); err != nil {
				t.Fatal(err)
			}
			expectFleetctlError(t, c, []string{"submit", path}, tc.parts...)
			expectFleetctlError(t, c, []string{"load", "--no-block", path}, tc.parts...)
			expectFleetctlError(t, c, []string{"start", "--no-block", path}, tc.parts...)
		}
		expectNothingStored(t, c)
	})

	t.Run("fleetctl/names", func(t *testing.T) {
		c := c.T(t)
		body := "[Service]\nExecStart=/bin/true\n"
		// Names the API refuses: fleetctl passes them on and reports the 400.
		for _, tc := range []struct{ file, part string }{
			{"a b.service", `invalid character ' ' in unit name`},
			{"@.service", `cannot start in "@"`},
		} {
			path := writeUnit(t, dir, tc.file, body)
			expectFleetctlError(t, c, []string{"submit", path}, tc.file, tc.part)
			expectFleetctlError(t, c, []string{"start", "--no-block", path}, tc.file, tc.part)
		}
		expectNothingStored(t, c)

		// fleetctl takes the last path element as the name, so "../x.service"
		// names x.service in the parent directory: no such file is an
		// error, and never a unit called "../x.service".
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(sub)
		expectFleetctlError(t, c, []string{"submit", "../x.service"}, "x.service")
		expectNothingStored(t, c)
		writeUnit(t, dir, "x.service", body)
		c.MustFleetctl("submit", "../x.service")
		if out := c.MustFleetctl("list-unit-files", "--no-legend", "--fields=unit"); out != "x.service\n" {
			t.Errorf("submit ../x.service stored %q, want x.service", out)
		}
		c.MustFleetctl("destroy", "x.service")

		// fleetctl appends .service to an argument without a unit suffix
		// it knows (fleet's maybeAppendDefaultUnitType, applied to the path
		// too): x.mount2 is the unit x.mount2.service in file
		// x.mount2.service, which does not exist.
		writeUnit(t, dir, "x.mount2", body)
		expectFleetctlError(t, c, []string{"submit", filepath.Join(dir, "x.mount2")}, "unable to find Unit(x.mount2.service)")
		expectFleetctlError(t, c, []string{"start", "--no-block", filepath.Join(dir, "x.mount2")}, "unable to find Unit(x.mount2.service)")
		expectNothingStored(t, c)
	})

	t.Run("fleetctl/forbidden-combinations", func(t *testing.T) {
		c := c.T(t)
		for _, tc := range []struct{ file, xfleet, part string }{
			{"pinned.service", "MachineID=" + machineID + "\nConflicts=other*.service\n", "MachineID cannot be used with Conflicts"},
			{"everywhere.service", "Global=true\nMachineOf=db.service\n", "Global cannot be used with Peers"},
		} {
			path := writeUnit(t, dir, tc.file, "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n"+tc.xfleet)
			expectFleetctlError(t, c, []string{"submit", path}, tc.file, tc.part)
			expectFleetctlError(t, c, []string{"start", "--no-block", path}, tc.file, tc.part)
		}
		expectNothingStored(t, c)
	})

	t.Run("api/names", func(t *testing.T) {
		c := c.T(t)
		for _, tc := range []struct{ escaped, name, part string }{
			{"..%2Fx.service", "../x.service", `invalid character '/' in unit name`},
			{"a%20b.service", "a b.service", `invalid character ' ' in unit name`},
			{"@.service", "@.service", `cannot start in "@"`},
			{"x.mount2", "x.mount2", `invalid unit type: "mount2"`},
		} {
			expectAPIError(t, c, "PUT", "/fleet/v1/units/"+tc.escaped, "application/json",
				unitJSON(t, "", "", execTrue), 400, tc.part)
			expectAPIError(t, c, "PUT", "/fleet/v1/units/"+tc.escaped, "application/json",
				unitJSON(t, tc.name, "launched", execTrue), 400, tc.part)
		}
		expectNothingStored(t, c)
	})

	t.Run("api/options", func(t *testing.T) {
		c := c.T(t)
		put := func(name string, want int, part string, opts ...[3]string) {
			t.Helper()
			expectAPIError(t, c, "PUT", "/fleet/v1/units/"+name, "application/json", unitJSON(t, name, "", opts...), want, part)
		}
		// The API's form of the bad files: an option outside any section, a
		// "line without =" (an option without a name), binary data.
		put("nosection.service", 400, "section", [3]string{"", "ExecStart", "/bin/true"})
		put("noname.service", 400, "without a name", [3]string{"Service", "", "this line has no equals sign"})
		put("binary.service", 400, "NUL", execTrue, [3]string{"Service", "Environment", "X=\x00\x01\x02"})
		// Forbidden [X-Fleet] combinations, with fleet's messages.
		put("pinned.service", 400, "MachineID cannot be used with Conflicts",
			execTrue, [3]string{"X-Fleet", "MachineID", machineID}, [3]string{"X-Fleet", "Conflicts", "other*.service"})
		put("everywhere.service", 400, "Global cannot be used with Peers",
			execTrue, [3]string{"X-Fleet", "Global", "true"}, [3]string{"X-Fleet", "MachineOf", "db.service"})
		// Over 1 MiB.
		put("big.service", 413, "too large", execTrue, [3]string{"Service", "Environment", "PAD=" + strings.Repeat("x", 1<<20)})
		// A body that is not JSON at all.
		expectAPIError(t, c, "PUT", "/fleet/v1/units/raw.service", "application/json",
			[]byte("\x7fELF\x02\x01\x01\x00\xff\xfe"), 400, "unable to decode body")
		// No options for a unit that does not exist.
		expectAPIError(t, c, "PUT", "/fleet/v1/units/empty.service", "application/json",
			[]byte(`{"desiredState":"launched"}`), 409, "unit does not exist and options field empty")
		expectNothingStored(t, c)
	})

	t.Run("api/not-utf8", func(t *testing.T) {
		c := c.T(t)
		// Bytes that are not UTF-8 inside the JSON strings (binary, or a
		// Latin-1 file): encoding/json quietly turns each into U+FFFD, so
		// the unit would be stored with other content than was sent.
		// fleetctl refuses such a file; the API must refuse it too.
		expectAPIError(t, c, "PUT", "/fleet/v1/units/latin1.service", "application/json",
			[]byte("{\"options\":[{\"section\":\"Service\",\"name\":\"ExecStart\",\"value\":\"/bin/echo \xe9t\xe9 \xff\xfe\"}]}"), 400, "UTF-8")
		expectNothingStored(t, c)
		// Clean up for the next cases if it was stored.
		apiCall(t, c, "DELETE", "/fleet/v1/units/latin1.service", "", nil)
	})

	t.Run("api/desired-state", func(t *testing.T) {
		c := c.T(t)
		// A new unit with a bogus desired state.
		expectAPIError(t, c, "PUT", "/fleet/v1/units/x.service", "application/json",
			unitJSON(t, "x.service", "bogus", execTrue), 400, "bogus")
		expectNothingStored(t, c)
		// An existing unit: 400, and the unit stays intact (real fleet
		// stored it and the unit became a 500 forever).
		if code, _, b := apiCall(t, c, "PUT", "/fleet/v1/units/x.service", "application/json", unitJSON(t, "x.service", "", execTrue)); code != 201 {
			t.Fatalf("create x.service: %d %s", code, b)
		}
		expectAPIError(t, c, "PUT", "/fleet/v1/units/x.service", "application/json", []byte(`{"desiredState":"bogus"}`), 400, "bogus")
		code, _, b := apiCall(t, c, "GET", "/fleet/v1/units/x.service", "", nil)
		var u struct {
			Name         string `json:"name"`
			DesiredState string `json:"desiredState"`
		}
		if code != 200 || json.Unmarshal(b, &u) != nil || u.Name != "x.service" || u.DesiredState != "inactive" {
			t.Errorf("GET x.service after the bogus PUT: %d %s", code, b)
		}
		if out := c.MustFleetctl("list-unit-files", "--no-legend", "--fields=unit,dstate"); strings.Join(strings.Fields(out), " ") != "x.service inactive" {
			t.Errorf("list-unit-files after the bogus PUT: %q", out)
		}
		if code, _, b := apiCall(t, c, "DELETE", "/fleet/v1/units/x.service", "", nil); code != 204 {
			t.Errorf("DELETE x.service: %d %s", code, b)
		}
		expectNothingStored(t, c)
	})

	t.Run("api/content-type", func(t *testing.T) {
		c := c.T(t)
		body := unitJSON(t, "ct.service", "", execTrue)
		expectAPIError(t, c, "PUT", "/fleet/v1/units/ct.service", "text/plain", body, 415, "only acceptable Content-Type is application/json")
		expectAPIError(t, c, "PUT", "/fleet/v1/units/ct.service", "application/x-www-form-urlencoded", body, 415, "application/json")
		expectAPIError(t, c, "PUT", "/fleet/v1/units/ct.service", "", body, 415, "Content-Type")
		expectNothingStored(t, c)
	})

	t.Run("api/page-token", func(t *testing.T) {
		c := c.T(t)
		for _, coll := range []string{"units", "state", "machines"} {
			expectAPIError(t, c, "GET", "/fleet/v1/"+coll+"?nextPageToken=garbage", "", nil, 400, "illegal base64 data")
			// Decodable, but limit 2 instead of the server's 100.
			expectAPIError(t, c, "GET", "/fleet/v1/"+coll+"?nextPageToken=AgACAA==", "", nil, 400, "token limit must be 100")
			// Page 0.
			expectAPIError(t, c, "GET", "/fleet/v1/"+coll+"?nextPageToken=ZAAAAA==", "", nil, 400, "token page must be greater than zero")
		}
		expectNothingStored(t, c)
	})

	t.Run("api/missing", func(t *testing.T) {
		c := c.T(t)
		expectAPIError(t, c, "GET", "/fleet/v1/state/missing.service", "", nil, 404, "does not exist")
		expectAPIError(t, c, "GET", "/fleet/v1/units/missing.service", "", nil, 404, "unit does not exist")
		expectAPIError(t, c, "DELETE", "/fleet/v1/units/missing.service", "", nil, 404, "unit does not exist")
		// and fleetctl about them
		expectFleetctlError(t, c, []string{"cat", "missing.service"}, "missing.service")
		expectFleetctlError(t, c, []string{"status", "missing.service"}, "missing.service")
		expectNothingStored(t, c)
	})
}
