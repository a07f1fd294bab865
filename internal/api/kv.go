package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// The kv extension (docs/api-extensions.md): etcd keys for units, the
// modern home of etcdctl v2's get/set/ls/rm/watch.
//
//	GET    /fleet/v1/kv/{key...}                      {"key","value","ttl"}   404 missing
//	GET    /fleet/v1/kv/{key...}?list=true            {"nodes":[...]} children (recursive=true: every key below)
//	GET    /fleet/v1/kv/{key...}?wait=true            one JSON line per change {"action":"set"|"delete","key","value"} (recursive=true: below too)
//	PUT    /fleet/v1/kv/{key...}   {"value":"v","ttl":"30s"}   {"key","value","ttl"}; a ttl puts the key on a fresh lease
//	DELETE /fleet/v1/kv/{key...}                      204; 404 missing (recursive=true: the key and everything below)
//
// Keys are absolute etcd keys. Keys under fleet's own prefix are refused
// (403), and listings and watches skip them.

const (
	// kvRequestTimeout bounds each etcd request of the kv extension.
	kvRequestTimeout = 5 * time.Second
	// maxKVTTL bounds a ttl.
	maxKVTTL = 365 * 24 * time.Hour
	// maxKVKey bounds a key's length.
	maxKVKey = 4096
	// maxKVList bounds one listing.
	maxKVList = 10000
)

// kvNode is one key (or directory) in answers.
type kvNode struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	Dir   bool   `json:"dir,omitempty"`
	TTL   int64  `json:"ttl,omitempty"` // seconds left, for keys on a lease
}

// kvEvent is one line of a watch.
type kvEvent struct {
	Action string `json:"action"` // set, delete
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
}

// kvPut is a PUT body.
type kvPut struct {
	Value *string         `json:"value"`
	TTL   json.RawMessage `json:"ttl,omitempty"` // "30s" or a number of seconds
}

func (s *Server) registerKV(mux *http.ServeMux, p string) {
	mux.HandleFunc("GET "+p+"/kv/{key...}", s.kvGet)
	mux.HandleFunc("PUT "+p+"/kv/{key...}", s.kvPut)
	mux.HandleFunc("DELETE "+p+"/kv/{key...}", s.kvDelete)
	mux.HandleFunc(p+"/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, msgOnlyGetPutDel)
	})
}

// kvKey returns the request's key ("/" + path below kv/), without a
// trailing '/' except for the root.
func kvKey(r *http.Request) (string, error) {
	k := "/" + r.PathValue("key")
	if len(k) > 1 {
		k = strings.TrimRight(k, "/")
		if k == "" {
			k = "/"
		}
	}
	if len(k) > maxKVKey {
		return "", fmt.Errorf("key is %d bytes; the limit is %d", len(k), maxKVKey)
	}
	if strings.ContainsRune(k, 0) {
		return "", errors.New("key contains a NUL byte")
	}
	return k, nil
}

// kvDir is the prefix of the keys below k.
func kvDir(k string) string {
	if strings.HasSuffix(k, "/") {
		return k
	}
	return k + "/"
}

// fleetOwned reports whether key is fleet's own (under its prefix).
func (s *Server) fleetOwned(key string) bool {
	p := s.store.Prefix()
	return strings.HasPrefix(key, p) || key+"/" == p
}

// refuseFleetKey answers 403 for fleet's own keys.
func (s *Server) refuseFleetKey(w http.ResponseWriter, key string) bool {
	if s.fleetOwned(key) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s is under fleet's own prefix %s: not writable or readable through kv", key, s.store.Prefix()))
		return true
	}
	return false
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid %s=%q: expect true or false", name, v)
	}
	return b, nil
}

func (s *Server) kvGet(w http.ResponseWriter, r *http.Request) {
	key, err := kvKey(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var flags [3]bool
	for i, name := range []string{"list", "recursive", "wait"} {
		if flags[i], err = boolParam(r, name); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	list, recursive, wait := flags[0], flags[1], flags[2]
	if s.refuseFleetKey(w, key) {
		return
	}
	switch {
	case wait:
		s.kvWatch(w, r, key, recursive)
	case list || recursive:
		s.kvList(w, r, key, recursive)
	default:
		s.kvGetOne(w, r, key)
	}
}

func (s *Server) kvGetOne(w http.ResponseWriter, r *http.Request, key string) {
	ctx, cancel := context.WithTimeout(r.Context(), kvRequestTimeout)
	defer cancel()
	kvc := s.store.KV()
	kv, found, _, err := kvc.Get(ctx, key)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !found {
		below, err := kvc.List(ctx, kvDir(key), etcdkv.ListOptions{CountOnly: true})
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		if below.Count > 0 {
			writeError(w, http.StatusBadRequest, key+": is a directory")
			return
		}
		writeError(w, http.StatusNotFound, "Key not found ("+key+")")
		return
	}
	n := kvNode{Key: key, Value: string(kv.Value)}
	if kv.Lease != etcdkv.NoLease {
		if left, _, err := kvc.TimeToLive(ctx, kv.Lease); err == nil && left > 0 {
			n.TTL = int64(left / time.Second)
		}
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) kvList(w http.ResponseWriter, r *http.Request, key string, recursive bool) {
	ctx, cancel := context.WithTimeout(r.Context(), kvRequestTimeout)
	defer cancel()
	dir := kvDir(key)
	kvc := s.store.KV()
	resp, err := kvc.List(ctx, dir, etcdkv.ListOptions{Limit: maxKVList + 1})
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if len(resp.KVs) > maxKVList {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d keys under %s; list a narrower key", maxKVList, key))
		return
	}
	nodes := []kvNode{}
	seenDir := map[string]bool{}
	for _, kv := range resp.KVs {
		k := kv.Key
		if s.fleetOwned(k) {
			continue
		}
		if recursive {
			nodes = append(nodes, kvNode{Key: k, Value: string(kv.Value)})
			continue
		}
		rest := strings.TrimPrefix(k, dir)
		if child, _, isDir := strings.Cut(rest, "/"); isDir {
			if !seenDir[child] {
				seenDir[child] = true
				nodes = append(nodes, kvNode{Key: dir + child, Dir: true})
			}
			continue
		}
		nodes = append(nodes, kvNode{Key: k, Value: string(kv.Value)})
	}
	slices.SortStableFunc(nodes, func(a, b kvNode) int { return strings.Compare(a.Key, b.Key) })
	if len(nodes) == 0 && key != "/" {
		// An empty directory does not exist in etcd v3: a missing key.
		_, found, _, err := kvc.Get(ctx, key)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		if !found {
			writeError(w, http.StatusNotFound, "Key not found ("+key+")")
			return
		}
		writeError(w, http.StatusBadRequest, key+": not a directory")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
}

// parseTTL reads a ttl: a Go duration string ("30s") or a number of
// seconds. Zero means none.
func parseTTL(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var d time.Duration
	var str string
	var num float64
	switch {
	case json.Unmarshal(raw, &str) == nil:
		if str == "" {
			return 0, nil
		}
		if n, err := strconv.ParseFloat(str, 64); err == nil {
			num = n
			d = time.Duration(n * float64(time.Second))
			break
		}
		var err error
		if d, err = time.ParseDuration(str); err != nil {
			return 0, fmt.Errorf("invalid ttl %q: expect a duration such as \"30s\" or a number of seconds", str)
		}
		num = d.Seconds()
	case json.Unmarshal(raw, &num) == nil:
		d = time.Duration(num * float64(time.Second))
	default:
		return 0, fmt.Errorf("invalid ttl %s: expect a duration such as \"30s\" or a number of seconds", raw)
	}
	if num <= 0 || d <= 0 {
		return 0, fmt.Errorf("invalid ttl %s: must be positive", raw)
	}
	if d > maxKVTTL {
		return 0, fmt.Errorf("invalid ttl %s: the limit is %s", raw, maxKVTTL)
	}
	return d, nil
}

func (s *Server) kvPut(w http.ResponseWriter, r *http.Request) {
	key, err := kvKey(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if key == "/" {
		writeError(w, http.StatusBadRequest, "cannot set the root")
		return
	}
	if s.refuseFleetKey(w, key) {
		return
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBodyBytes+1))
	dec.DisallowUnknownFields()
	var body kvPut
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid body: "+err.Error()+` (expect {"value":"...","ttl":"30s"})`)
		return
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid body: more than one JSON value")
		return
	}
	if body.Value == nil {
		writeError(w, http.StatusBadRequest, `invalid body: "value" is required`)
		return
	}
	ttl, err := parseTTL(body.TTL)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), kvRequestTimeout)
	defer cancel()
	kvc := s.store.KV()
	lease := etcdkv.NoLease
	n := kvNode{Key: key, Value: *body.Value}
	if ttl > 0 {
		secs := int64(math.Ceil(ttl.Seconds()))
		if lease, err = kvc.Grant(ctx, time.Duration(secs)*time.Second); err != nil {
			s.storeError(w, r, err)
			return
		}
		n.TTL = secs
	}
	if _, err := kvc.Put(ctx, key, *body.Value, lease); err != nil {
		if lease != etcdkv.NoLease {
			// Leave no orphan lease behind (best effort).
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = kvc.Revoke(rctx, lease)
			rcancel()
		}
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) kvDelete(w http.ResponseWriter, r *http.Request) {
	key, err := kvKey(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	recursive, err := boolParam(r, "recursive")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.refuseFleetKey(w, key) {
		return
	}
	if recursive && strings.HasPrefix(s.store.Prefix(), kvDir(key)) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s holds fleet's own prefix %s: refusing to delete it recursively", key, s.store.Prefix()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), kvRequestTimeout)
	defer cancel()
	ops := []etcdkv.Op{etcdkv.DeleteOp(key)}
	if recursive {
		ops = append(ops, etcdkv.DeletePrefixOp(kvDir(key)))
	}
	// Unconditional: the key and what is below go in one revision.
	res, err := s.store.KV().Txn(ctx, nil, ops...)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if res.Deleted == 0 {
		writeError(w, http.StatusNotFound, "Key not found ("+key+")")
		return
	}
	writeJSON(w, http.StatusNoContent, nil)
}

func (s *Server) kvWatch(w http.ResponseWriter, r *http.Request, key string, recursive bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	kvc := s.store.KV()
	// Start at the current revision so that the client knows, once the
	// answer's headers arrive, that no later change is missed.
	rctx, rcancel := context.WithTimeout(ctx, kvRequestTimeout)
	_, _, rev, err := kvc.Get(rctx, key)
	rcancel()
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	start := rev + 1
	// The seam's watches require an etcd leader, and end with an error
	// (compaction, cancellation by etcd) as their last batch.
	var chans []<-chan etcdkv.WatchBatch
	if key != "/" || !recursive {
		chans = append(chans, kvc.Watch(ctx, key, etcdkv.WatchOptions{FromRev: start}))
	}
	if recursive {
		chans = append(chans, kvc.Watch(ctx, kvDir(key), etcdkv.WatchOptions{Prefix: true, FromRev: start}))
	}
	events := make(chan kvEvent)
	errc := make(chan error, len(chans))
	for _, ch := range chans {
		go func() {
			for b := range ch {
				if b.Err != nil {
					errc <- b.Err
					return
				}
				for _, ev := range b.Events {
					e := kvEvent{Action: "set", Key: ev.KV.Key, Value: string(ev.KV.Value)}
					if ev.Type == etcdkv.EventDelete {
						e = kvEvent{Action: "delete", Key: ev.KV.Key}
					}
					if s.fleetOwned(e.Key) {
						continue
					}
					select {
					case events <- e:
					case <-ctx.Done():
						return
					}
				}
			}
			errc <- errors.New("watch closed")
		}()
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errc:
			if ctx.Err() == nil {
				s.log.Warn("api: kv watch ended", "key", key, "err", err)
			}
			return
		case e := <-events:
			if err := enc.Encode(e); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}
