package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
)

// originalDiscovery is fleet's schema/v1.json, the Google API discovery
// document the original fleetd served at /fleet/v1/discovery, kept
// byte-identical (its rootUrl is the literal "$ENDPOINT/").
//
//go:embed schema/v1.json
var originalDiscovery []byte

// discoveryExtensions describes our extensions (docs/api-extensions.md) in
// the same format: its "schemas" and "resources" are added to the original
// document's. It may only add keys, never change the original's.
//
//go:embed schema/extensions.json
var discoveryExtensions []byte

// discoveryDoc is the served document: the original with the extensions
// merged in, the original's keys first and in their order.
var discoveryDoc = mustMergeDiscovery(originalDiscovery, discoveryExtensions)

func mustMergeDiscovery(orig, ext []byte) []byte {
	b, err := mergeDiscovery(orig, ext)
	if err != nil {
		panic("api: discovery document: " + err.Error())
	}
	return b
}

// mergeDiscovery adds ext's keys to orig, recursively where both hold an
// object under the same key, and renders the result indented by two spaces
// like fleet's file. A key in both whose values are not both objects is an
// error. Merging an empty object ({}) reproduces orig.
func mergeDiscovery(orig, ext []byte) ([]byte, error) {
	o, err := parseObject(orig)
	if err != nil {
		return nil, fmt.Errorf("original: %w", err)
	}
	e, err := parseObject(ext)
	if err != nil {
		return nil, fmt.Errorf("extensions: %w", err)
	}
	if err := o.merge(e, ""); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, o.render(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// jsonObject is a JSON object that keeps the order of its keys.
type jsonObject struct {
	keys []string
	vals map[string]json.RawMessage
}

func isObject(raw []byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

func parseObject(raw []byte) (*jsonObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil {
		return nil, err
	} else if t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	o := &jsonObject{vals: map[string]json.RawMessage{}}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := o.vals[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		o.keys = append(o.keys, k)
		o.vals[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the object")
	}
	return o, nil
}

// merge adds e's keys to o (see mergeDiscovery); path names o in errors.
func (o *jsonObject) merge(e *jsonObject, path string) error {
	for _, k := range e.keys {
		ev := e.vals[k]
		ov, ok := o.vals[k]
		if !ok {
			o.keys = append(o.keys, k)
			o.vals[k] = ev
			continue
		}
		if !isObject(ov) || !isObject(ev) {
			return fmt.Errorf("extension would replace %s/%s", path, k)
		}
		oc, err := parseObject(ov)
		if err != nil {
			return err
		}
		ec, err := parseObject(ev)
		if err != nil {
			return err
		}
		if err := oc.merge(ec, path+"/"+k); err != nil {
			return err
		}
		o.vals[k] = oc.render()
	}
	return nil
}

// render encodes o compactly, keys in order.
func (o *jsonObject) render() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		json.Compact(&b, o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(discoveryDoc)
}
