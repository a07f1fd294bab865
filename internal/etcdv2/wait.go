package etcdv2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// serveWait serves GET ?wait=true: the first change of the key (of any
// key under it with recursive) at or after waitIndex (after now without
// it), from a v3 watch. A compacted waitIndex gets etcd's 401 error.
func (h *handler) serveWait(w http.ResponseWriter, r *http.Request, q *keyReq) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	_, _, cur, err := h.kv.Get(ctx, q.key)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	from := q.waitIndex
	if from == 0 {
		from = cur + 1
	}
	if from <= cur {
		if _, err := h.kv.List(ctx, q.key, etcdkv.ListOptions{Rev: from, CountOnly: true}); err != nil {
			if !etcdkv.IsCompacted(err) {
				h.internal(w, r, err)
				return
			}
			h.cleared(ctx, q, from, cur).writeTo(w)
			return
		}
	}
	prefix := q.key
	ch := h.kv.Watch(ctx, prefix, etcdkv.WatchOptions{Prefix: true, FromRev: from, PrevKV: true})
	h.setIndexHeaders(w, r, cur)
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	for b := range ch {
		if b.Err != nil {
			if b.Compacted != 0 {
				// Compacted between the check and the watch: the status
				// is sent already, the body still says why.
				_ = json.NewEncoder(w).Encode(h.cleared(ctx, q, from, cur))
			}
			return
		}
		for _, e := range b.Events {
			if ev := h.v2Event(ctx, q, e); ev != nil {
				if r.Method != http.MethodHead {
					_ = json.NewEncoder(w).Encode(ev)
				}
				return
			}
		}
	}
}

// cleared is etcd's error for a wait on an index that is gone; the cause
// names the oldest index left and the one asked for.
func (h *handler) cleared(ctx context.Context, q *keyReq, from, cur int64) *Error {
	start := int64(0)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for b := range h.kv.Watch(wctx, q.key, etcdkv.WatchOptions{FromRev: from}) {
		start = b.Compacted
		break
	}
	return newError(EcodeEventIndexGone, fmt.Sprintf("the requested history has been cleared [%d/%d]", start, from), cur)
}

// watchKey is the v2 key a v3 event is about and whether it is a
// directory; ok is false for keys v2 cannot show.
func watchKey(e etcdkv.Event) (key string, dir, ok bool) {
	k := e.KV.Key
	if strings.HasSuffix(k, "/") {
		kv := e.KV
		if e.Type == etcdkv.EventDelete {
			if e.Prev == nil {
				return "", false, false
			}
			kv = *e.Prev
		}
		if !isMarker(kv) {
			return "", false, false
		}
		return strings.TrimSuffix(k, "/"), true, true
	}
	return k, false, cleanKey(k)
}

// v2Event is the v2 event of a v3 one, nil when the wait q does not see
// it.
func (h *handler) v2Event(ctx context.Context, q *keyReq, e etcdkv.Event) *Event {
	key, dir, ok := watchKey(e)
	if !ok {
		return nil
	}
	if key != q.key {
		if !q.recursive {
			return nil
		}
		rel, under := strings.CutPrefix(key, strings.TrimSuffix(q.key, "/")+"/")
		if !under {
			return nil
		}
		for _, seg := range strings.Split(rel, "/") {
			if strings.HasPrefix(seg, "_") {
				return nil
			}
		}
	}
	ttls := newTTLCache(h.kv)
	var prev *Node
	if e.Prev != nil {
		prev = kvNode(*e.Prev)
		if prev != nil {
			ttls.fill(ctx, prev)
		}
	}
	if e.Type == etcdkv.EventPut {
		n := kvNode(e.KV)
		if n == nil {
			return nil
		}
		ttls.fill(ctx, n)
		return &Event{Action: "set", Node: n, PrevNode: prev}
	}
	n := &Node{Key: key, Dir: dir, ModifiedIndex: e.KV.ModRev}
	action := "delete"
	if e.Prev != nil {
		n.CreatedIndex = e.Prev.CreateRev
		if e.Prev.Lease != etcdkv.NoLease {
			if _, _, err := h.kv.TimeToLive(ctx, e.Prev.Lease); err != nil {
				action = "expire"
			}
		}
		if prev != nil {
			prev.Expiration, prev.TTL = nil, 0
		}
	}
	return &Event{Action: action, Node: n, PrevNode: prev}
}
