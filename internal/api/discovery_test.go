package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// checkDiscovery checks a served discovery document: fleet's schema/v1.json
// unchanged plus our extension methods.
func checkDiscovery(t *testing.T, body string) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("discovery is not JSON: %v", err)
	}
	// The original's top-level fields, as in fleet's schema/v1.json.
	for k, want := range map[string]any{
		"kind":              "discovery#restDescription",
		"discoveryVersion":  "v1",
		"id":                "fleet:v1",
		"name":              "schema",
		"version":           "v1",
		"title":             "fleet API",
		"description":       "",
		"documentationLink": "http://github.com/coreos/fleet",
		"protocol":          "rest",
		"icons":             map[string]any{"x16": "", "x32": ""},
		"labels":            []any{},
		"baseUrl":           "$ENDPOINT/fleet/v1/",
		"basePath":          "/fleet/v1/",
		"rootUrl":           "$ENDPOINT/",
		"servicePath":       "fleet/v1/",
		"batchPath":         "batch",
		"parameters":        map[string]any{},
		"auth":              map[string]any{},
	} {
		if got := doc[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("discovery %s = %#v, want %#v", k, got, want)
		}
	}
	methods := func(resource string) map[string]any {
		r, _ := doc["resources"].(map[string]any)[resource].(map[string]any)
		m, _ := r["methods"].(map[string]any)
		return m
	}
	// The original's methods (UnitState.Get included) and our extensions.
	for _, c := range []struct{ resource, method, id, httpMethod, path string }{
		{"Machines", "List", "fleet.Machine.List", "GET", "machines"},
		{"Units", "List", "fleet.Unit.List", "GET", "units"},
		{"Units", "Get", "fleet.Unit.Get", "GET", "units/{unitName}"},
		{"Units", "Delete", "fleet.Unit.Delete", "DELETE", "units/{unitName}"},
		{"Units", "Set", "fleet.Unit.Set", "PUT", "units/{unitName}"},
		{"UnitState", "Get", "fleet.UnitState.Get", "GET", "state/{unitName}"},
		{"UnitState", "List", "fleet.UnitState.List", "GET", "state"},

		{"Machines", "Patch", "fleet.Machine.Patch", "PATCH", "machines"},
		{"Machines", "Drain", "fleet.Machine.Drain", "PUT", "machines/{machineID}/drain"},
		{"Machines", "Undrain", "fleet.Machine.Undrain", "DELETE", "machines/{machineID}/drain"},
		{"Reasons", "List", "fleet.Reason.List", "GET", "reasons"},
		{"Reasons", "Get", "fleet.Reason.Get", "GET", "reasons/{unitName}"},
		{"Status", "Get", "fleet.Status.Get", "GET", "status/{unitName}"},
		{"Journal", "Get", "fleet.Journal.Get", "GET", "journal/{unitName}"},
		{"Local", "Status", "fleet.Local.Status", "GET", "local/status/{unitName}"},
		{"Local", "Journal", "fleet.Local.Journal", "GET", "local/journal/{unitName}"},
		{"Events", "Watch", "fleet.Event.Watch", "GET", "events"},
		{"KV", "Get", "fleet.KV.Get", "GET", "kv/{+key}"},
		{"KV", "Set", "fleet.KV.Set", "PUT", "kv/{+key}"},
		{"KV", "Delete", "fleet.KV.Delete", "DELETE", "kv/{+key}"},
		{"UI", "Login", "fleet.UI.Login", "POST", "ui-login"},
	} {
		m, _ := methods(c.resource)[c.method].(map[string]any)
		if m == nil || m["id"] != c.id || m["httpMethod"] != c.httpMethod || m["path"] != c.path {
			t.Errorf("discovery %s.%s = %v, want %s %s %s", c.resource, c.method, m, c.id, c.httpMethod, c.path)
		}
	}
	// Every $ref names a schema of the document.
	schemas, _ := doc["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && schemas[ref] == nil {
				t.Errorf("discovery: $ref %q has no schema", ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)

	// Without the extensions' additions, the document is the embedded
	// original byte for byte.
	served, err := parseObject([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := parseObject(originalDiscovery)
	ext, _ := parseObject(discoveryExtensions)
	stripExtensions(t, served, ext, orig)
	var out bytes.Buffer
	if err := json.Indent(&out, served.render(), "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	if out.String() != string(originalDiscovery) {
		t.Errorf("the original part of the discovery document differs from schema/v1.json:\n%s", out.String())
	}
	// And the original's keys come first, in its order.
	if !strings.HasPrefix(body, string(originalDiscovery[:bytes.Index(originalDiscovery, []byte(`"schemas"`))])) {
		t.Errorf("discovery does not start as schema/v1.json does:\n%.600s", body)
	}
}

// stripExtensions removes from served what ext added to orig.
func stripExtensions(t *testing.T, served, ext, orig *jsonObject) {
	t.Helper()
	for _, k := range ext.keys {
		ov, inOrig := orig.vals[k]
		if !inOrig {
			if _, ok := served.vals[k]; !ok {
				t.Errorf("discovery lacks extension key %q", k)
			}
			delete(served.vals, k)
			for i, sk := range served.keys {
				if sk == k {
					served.keys = append(served.keys[:i], served.keys[i+1:]...)
					break
				}
			}
			continue
		}
		sc, err := parseObject(served.vals[k])
		if err != nil {
			t.Fatalf("discovery %q: %v", k, err)
		}
		oc, _ := parseObject(ov)
		ec, _ := parseObject(ext.vals[k])
		stripExtensions(t, sc, ec, oc)
		served.vals[k] = sc.render()
	}
}

func TestDiscoveryDocument(t *testing.T) {
	checkDiscovery(t, string(discoveryDoc))

	// The extensions file is only additions: nothing of the original is
	// replaced, and merging nothing renders the original unchanged.
	same, err := mergeDiscovery(originalDiscovery, []byte("{}"))
	if err != nil || !bytes.Equal(same, originalDiscovery) {
		t.Errorf("merging {} changed the original (%v):\n%s", err, same)
	}
	for _, bad := range []string{
		`{"name":"fleet"}`,
		`{"resources":{"Units":{"methods":{"Get":{"id":"x"}}}}}`,
		`{"resources":{"Units":{"methods":{"Get":"x"}}}}`,
		`{"labels":["x"]}`,
		`[]`,
		`{"a":1}{}`,
	} {
		if _, err := mergeDiscovery(originalDiscovery, []byte(bad)); err == nil {
			t.Errorf("merging %s: no error", bad)
		}
	}
}
