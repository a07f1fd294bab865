package etcdv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// keyReq is a parsed keys request.
type keyReq struct {
	method                                           string
	key                                              string
	recursive, sorted, wait, dir, refresh, noValueOK bool
	prevExist                                        *bool
	prevValue                                        *string
	prevIndex, waitIndex                             int64
	value                                            string
	hasValue                                         bool
	ttl                                              *int64
}

func formBool(r *http.Request, name string, quote bool) (bool, *Error) {
	vals, ok := r.Form[name]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(vals[0])
	if err != nil {
		cause := "invalid value for " + strconv.Quote(name)
		if !quote {
			cause = "invalid value for " + name
		}
		return false, newError(EcodeInvalidField, cause, 0)
	}
	return b, nil
}

func formUint(r *http.Request, name string, code int) (int64, *Error) {
	vals, ok := r.Form[name]
	if !ok {
		return 0, nil
	}
	i, err := strconv.ParseUint(vals[0], 10, 63)
	if err != nil {
		return 0, newError(code, "invalid value for "+strconv.Quote(name), 0)
	}
	return int64(i), nil
}

// parseKeyRequest validates a keys request like etcd's v2http does.
func parseKeyRequest(r *http.Request) (*keyReq, *Error) {
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			e := newError(EcodeInvalidForm, "request body too large", 0)
			e.status = http.StatusRequestEntityTooLarge
			return nil, e
		}
		return nil, newError(EcodeInvalidForm, err.Error(), 0)
	}
	q := &keyReq{method: r.Method, key: path.Join("/", strings.TrimPrefix(r.URL.Path, "/v2/keys"))}
	var e *Error
	if q.prevIndex, e = formUint(r, "prevIndex", EcodeIndexNaN); e != nil {
		return nil, e
	}
	if q.waitIndex, e = formUint(r, "waitIndex", EcodeIndexNaN); e != nil {
		return nil, e
	}
	for _, f := range []struct {
		name string
		to   *bool
	}{{"recursive", &q.recursive}, {"sorted", &q.sorted}, {"wait", &q.wait}, {"dir", &q.dir}, {"quorum", new(bool)}, {"stream", new(bool)}} {
		if *f.to, e = formBool(r, f.name, true); e != nil {
			return nil, e
		}
	}
	if v := r.FormValue("ttl"); v != "" {
		i, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return nil, newError(EcodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		ttl := int64(i)
		q.ttl = &ttl
	}
	if _, ok := r.Form["prevExist"]; ok {
		b, e := formBool(r, "prevExist", false)
		if e != nil {
			return nil, e
		}
		q.prevExist = &b
	}
	if q.wait && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, newError(EcodeInvalidField, `"wait" can only be used with GET requests`, 0)
	}
	if vals, ok := r.Form["prevValue"]; ok {
		if vals[0] == "" {
			return nil, newError(EcodePrevValueReq, `"prevValue" cannot be empty`, 0)
		}
		q.prevValue = &vals[0]
	}
	if q.noValueOK, e = formBool(r, "noValueOnSuccess", true); e != nil {
		return nil, e
	}
	if q.refresh, e = formBool(r, "refresh", true); e != nil {
		return nil, e
	}
	_, q.hasValue = r.Form["value"]
	q.value = r.FormValue("value")
	if q.refresh {
		if q.ttl == nil {
			return nil, newError(EcodeRefreshTTLReq, "No TTL value set", 0)
		}
		if q.hasValue {
			return nil, newError(EcodeRefreshValue, "A value was provided on a refresh", 0)
		}
	}
	return q, nil
}

func (h *handler) serveKeys(w http.ResponseWriter, r *http.Request, canWrite bool) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	q, e := parseKeyRequest(r)
	if e != nil {
		e.writeTo(w)
		return
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !read && !canWrite {
		w.Header().Set("WWW-Authenticate", `Basic realm="etcd"`)
		newError(EcodeUnauthorized, "Insufficient credentials", 0).writeTo(w)
		return
	}
	ctx := r.Context()
	if read && q.wait {
		h.serveWait(w, r, q)
		return
	}
	var (
		ev  *Event
		rev int64
		err error
	)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		ev, rev, err = h.get(ctx, q)
	case http.MethodPut:
		ev, rev, err = h.put(ctx, q, false)
	case http.MethodPost:
		ev, rev, err = h.put(ctx, q, true)
	case http.MethodDelete:
		ev, rev, err = h.del(ctx, q)
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.setIndexHeaders(w, r, rev)
	created := ev.Action == "create" || (ev.Action == "set" && ev.PrevNode == nil)
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	if r.Method == http.MethodHead {
		return
	}
	if q.noValueOK && (ev.Action == "set" || ev.Action == "compareAndSwap" || ev.Action == "create" || ev.Action == "update") {
		ev.Node, ev.PrevNode = nil, nil
	}
	_ = json.NewEncoder(w).Encode(ev)
}

// get reads a key: a file, or a directory with its children (all of
// them with recursive).
func (h *handler) get(ctx context.Context, q *keyReq) (*Event, int64, error) {
	ttls := newTTLCache(h.kv)
	if q.key == "/" {
		l, err := h.kv.List(ctx, "/", etcdkv.ListOptions{})
		if err != nil {
			return nil, 0, err
		}
		n := buildDir("/", l.KVs)
		h.finish(ctx, n, q.recursive, ttls)
		return &Event{Action: "get", Node: n}, l.Rev, nil
	}
	kv, found, rev, err := h.kv.Get(ctx, q.key)
	if err != nil {
		return nil, 0, err
	}
	if found {
		n := fileNode(kv)
		ttls.fill(ctx, n)
		return &Event{Action: "get", Node: n}, rev, nil
	}
	l, err := h.kv.List(ctx, markerKey(q.key), etcdkv.ListOptions{Rev: rev})
	if err != nil && etcdkv.IsCompacted(err) {
		l, err = h.kv.List(ctx, markerKey(q.key), etcdkv.ListOptions{})
	}
	if err != nil {
		return nil, 0, err
	}
	n := buildDir(q.key, l.KVs)
	if !n.marker && len(n.Nodes) == 0 {
		return nil, 0, newError(EcodeKeyNotFound, q.key, l.Rev)
	}
	h.finish(ctx, n, q.recursive, ttls)
	return &Event{Action: "get", Node: n}, l.Rev, nil
}

// state is what a write sees of its key and the key's ancestors.
type state struct {
	rev      int64
	file     *etcdkv.KV // the key is a file
	marker   *etcdkv.KV // the key is a directory with a marker
	children bool       // keys under the key (besides its marker)
	anc      []string   // ancestors, root first (without "/")
	ancFile  string     // the first ancestor that is a file
	ancMark  map[string]etcdkv.KV
}

func (s *state) isDir() bool { return s.marker != nil || s.children }

func ancestors(key string) []string {
	var out []string
	for p := path.Dir(key); p != "/"; p = path.Dir(p) {
		out = append([]string{p}, out...)
	}
	return out
}

func (h *handler) read(ctx context.Context, key string) (*state, error) {
	s := &state{anc: ancestors(key), ancMark: map[string]etcdkv.KV{}}
	keys := []string{key, markerKey(key)}
	for _, a := range s.anc {
		keys = append(keys, a, markerKey(a))
	}
	rs, err := h.kv.ReadKeys(ctx, keys, []string{markerKey(key)})
	if err != nil {
		return nil, err
	}
	s.rev = rs.Rev
	if kv, ok := rs.Keys[key]; ok {
		s.file = &kv
	}
	if kv, ok := rs.Keys[markerKey(key)]; ok {
		s.marker = &kv
	}
	if first, ok := rs.First[markerKey(key)]; ok {
		s.children = first.Key != markerKey(key) || rs.More[markerKey(key)]
	}
	for _, a := range s.anc {
		if _, ok := rs.Keys[a]; ok && s.ancFile == "" {
			s.ancFile = a
		}
		if kv, ok := rs.Keys[markerKey(a)]; ok {
			s.ancMark[a] = kv
		}
	}
	return s, nil
}

// guards are the conditions that keep what s saw true, and the ops that
// create the missing markers of the key's ancestors.
func (s *state) guards(key string) ([]etcdkv.Cond, []etcdkv.Op) {
	var conds []etcdkv.Cond
	var ops []etcdkv.Op
	for _, a := range s.anc {
		conds = append(conds, etcdkv.Absent(a))
		if m, ok := s.ancMark[a]; ok {
			conds = append(conds, etcdkv.CreateRevIs(markerKey(a), m.CreateRev))
		} else {
			conds = append(conds, etcdkv.Absent(markerKey(a)))
			ops = append(ops, etcdkv.PutOp(markerKey(a), dirMarkerValue, etcdkv.NoLease))
		}
	}
	if s.file != nil {
		conds = append(conds, etcdkv.ModRevIs(key, s.file.ModRev))
	} else {
		conds = append(conds, etcdkv.Absent(key))
	}
	if s.marker != nil {
		conds = append(conds, etcdkv.ModRevIs(markerKey(key), s.marker.ModRev))
	} else {
		conds = append(conds, etcdkv.Absent(markerKey(key)))
	}
	return conds, ops
}

// errRetry: what the write saw changed before it applied; read again.
var errRetry = errors.New("etcd v2: conflicting write, retrying")

const maxRetries = 20

func (h *handler) readOnly(key string) bool {
	return key == h.fp || strings.HasPrefix(key, h.fp+"/") || strings.HasPrefix(h.fp, key+"/")
}

// dirNode is the node of s's directory key.
func (s *state) dirNode(key string) *Node {
	if s.marker != nil {
		return markerNode(*s.marker)
	}
	return &Node{Key: key, Dir: true}
}

// put serves PUT (and POST: inOrder).
func (h *handler) put(ctx context.Context, q *keyReq, inOrder bool) (*Event, int64, error) {
	if q.key == "/" && !inOrder {
		return nil, 0, newError(EcodeRootROnly, "/", h.currentRev(ctx))
	}
	if h.readOnly(q.key) || (inOrder && h.readOnly(q.key+"/x")) {
		return nil, 0, newError(EcodeRootROnly, q.key, h.currentRev(ctx))
	}
	for range maxRetries {
		ev, rev, err := h.putOnce(ctx, q, inOrder)
		if !errors.Is(err, errRetry) {
			return ev, rev, err
		}
	}
	return nil, 0, newError(EcodeRaftInternal, "too many conflicting writes", 0)
}

func (h *handler) putOnce(ctx context.Context, q *keyReq, inOrder bool) (*Event, int64, error) {
	key := q.key
	if inOrder {
		ps, err := h.read(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		if ps.file != nil {
			return nil, 0, newError(EcodeNotDir, key, ps.rev)
		}
		if ps.ancFile != "" {
			return nil, 0, newError(EcodeNotDir, ps.ancFile, ps.rev)
		}
		key = path.Join(key, fmt.Sprintf("%020d", ps.rev+1))
	}
	s, err := h.read(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if s.ancFile != "" {
		return nil, 0, newError(EcodeNotDir, s.ancFile, s.rev)
	}
	conds, ops := s.guards(key)
	var prev *Node
	switch {
	case s.file != nil:
		prev = fileNode(*s.file)
	case s.isDir():
		prev = s.dirNode(key)
	}
	cas := q.prevIndex > 0 || q.prevValue != nil
	action := "set"
	switch {
	case inOrder:
		action = "create"
	case cas:
		action = "compareAndSwap"
		if prev == nil {
			return nil, 0, newError(EcodeKeyNotFound, key, s.rev)
		}
		if prev.Dir {
			return nil, 0, newError(EcodeNotFile, key, s.rev)
		}
		if cause := compareFail(q, prev); cause != "" {
			return nil, 0, newError(EcodeTestFailed, cause, s.rev)
		}
	case q.prevExist != nil && !*q.prevExist:
		action = "create"
		if prev != nil {
			return nil, 0, newError(EcodeNodeExist, key, s.rev)
		}
	case q.prevExist != nil && *q.prevExist:
		action = "update"
		if prev == nil {
			return nil, 0, newError(EcodeKeyNotFound, key, s.rev)
		}
		if prev.Dir && q.value != "" {
			return nil, 0, newError(EcodeNotFile, key, s.rev)
		}
	default:
		if prev != nil && prev.Dir {
			return nil, 0, newError(EcodeNotFile, key, s.rev)
		}
	}
	if q.refresh {
		if prev == nil {
			return nil, 0, newError(EcodeKeyNotFound, key, s.rev)
		}
		if prev.Dir {
			return nil, 0, newError(EcodeNotFile, key, s.rev)
		}
		return h.refresh(ctx, q, s, key, action, conds, ops)
	}
	// An update of a directory (updatedir) keeps it a directory; dir=true
	// makes a directory of a missing key or of a file (set only).
	makeDir := q.dir && action != "update" && action != "compareAndSwap"
	if action == "update" && prev.Dir {
		makeDir = true
	}
	lease := etcdkv.NoLease
	if q.ttl != nil {
		if lease, err = h.kv.Grant(ctx, time.Duration(*q.ttl)*time.Second); err != nil {
			return nil, 0, err
		}
	}
	node := &Node{Key: key}
	if makeDir {
		node.Dir = true
		if s.file != nil {
			ops = append(ops, etcdkv.DeleteOp(key))
		}
		ops = append(ops, etcdkv.PutOp(markerKey(key), dirMarkerValue, lease))
	} else {
		v := q.value
		node.Value = &v
		ops = append(ops, etcdkv.PutOp(key, q.value, lease))
	}
	res, err := h.kv.Txn(ctx, conds, ops...)
	if err != nil {
		return nil, 0, err
	}
	if !res.Succeeded {
		return nil, 0, errRetry
	}
	node.ModifiedIndex, node.CreatedIndex = res.Rev, res.Rev
	switch {
	case makeDir && s.marker != nil:
		node.CreatedIndex = s.marker.CreateRev
	case !makeDir && s.file != nil:
		node.CreatedIndex = s.file.CreateRev
	}
	if q.ttl != nil {
		setTTL(node, time.Now(), time.Duration(*q.ttl)*time.Second)
	}
	if prev != nil {
		newTTLCache(h.kv).fill(ctx, prev)
	}
	return &Event{Action: action, Node: node, PrevNode: prev}, res.Rev, nil
}

// refresh renews the TTL of a file without changing its value: its lease
// is kept alive when it has the TTL asked for (no new revision, as in
// etcd v2 watchers see nothing), else the file is written again on a new
// lease.
func (h *handler) refresh(ctx context.Context, q *keyReq, s *state, key, action string, conds []etcdkv.Cond, ops []etcdkv.Op) (*Event, int64, error) {
	want := time.Duration(*q.ttl) * time.Second
	prev := fileNode(*s.file)
	newTTLCache(h.kv).fill(ctx, prev)
	node := fileNode(*s.file)
	node.lease = etcdkv.NoLease
	if s.file.Lease != etcdkv.NoLease {
		if _, granted, err := h.kv.TimeToLive(ctx, s.file.Lease); err == nil && granted == want {
			if _, err := h.kv.KeepAliveOnce(ctx, s.file.Lease); err == nil {
				setTTL(node, time.Now(), want)
				return &Event{Action: action, Node: node, PrevNode: prev, Refresh: true}, s.rev, nil
			}
		}
	}
	lease, err := h.kv.Grant(ctx, want)
	if err != nil {
		return nil, 0, err
	}
	ops = append(ops, etcdkv.PutOp(key, string(s.file.Value), lease))
	res, err := h.kv.Txn(ctx, conds, ops...)
	if err != nil {
		return nil, 0, err
	}
	if !res.Succeeded {
		return nil, 0, errRetry
	}
	node.ModifiedIndex = res.Rev
	setTTL(node, time.Now(), want)
	return &Event{Action: action, Node: node, PrevNode: prev, Refresh: true}, res.Rev, nil
}

// compareFail is etcd's cause of a failed compare, "" if it holds.
func compareFail(q *keyReq, n *Node) string {
	valueBad := q.prevValue != nil && (n.Value == nil || *q.prevValue != *n.Value)
	indexBad := q.prevIndex > 0 && q.prevIndex != n.ModifiedIndex
	cur := ""
	if n.Value != nil {
		cur = *n.Value
	}
	switch {
	case valueBad && indexBad:
		return fmt.Sprintf("[%v != %v] [%v != %v]", *q.prevValue, cur, q.prevIndex, n.ModifiedIndex)
	case valueBad:
		return fmt.Sprintf("[%v != %v]", *q.prevValue, cur)
	case indexBad:
		return fmt.Sprintf("[%v != %v]", q.prevIndex, n.ModifiedIndex)
	}
	return ""
}

func (h *handler) currentRev(ctx context.Context) int64 {
	_, _, rev, err := h.kv.Get(ctx, "/")
	if err != nil {
		return 0
	}
	return rev
}

// del serves DELETE.
func (h *handler) del(ctx context.Context, q *keyReq) (*Event, int64, error) {
	if q.key == "/" {
		return nil, 0, newError(EcodeRootROnly, "/", h.currentRev(ctx))
	}
	if h.readOnly(q.key) {
		return nil, 0, newError(EcodeRootROnly, q.key, h.currentRev(ctx))
	}
	for range maxRetries {
		ev, rev, err := h.delOnce(ctx, q)
		if !errors.Is(err, errRetry) {
			return ev, rev, err
		}
	}
	return nil, 0, newError(EcodeRaftInternal, "too many conflicting writes", 0)
}

func (h *handler) delOnce(ctx context.Context, q *keyReq) (*Event, int64, error) {
	key := q.key
	s, err := h.read(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if s.file == nil && !s.isDir() {
		return nil, 0, newError(EcodeKeyNotFound, key, s.rev)
	}
	conds, _ := s.guards(key) // a delete creates no markers
	dir := q.dir || q.recursive
	action := "delete"
	var prev *Node
	var ops []etcdkv.Op
	if s.file != nil {
		prev = fileNode(*s.file)
		ops = append(ops, etcdkv.DeleteOp(key))
	} else {
		prev = s.dirNode(key)
		if !dir || q.prevValue != nil || q.prevIndex > 0 {
			return nil, 0, newError(EcodeNotFile, key, s.rev)
		}
		if s.children && !q.recursive {
			return nil, 0, newError(EcodeDirNotEmpty, key, s.rev)
		}
		ops = append(ops, etcdkv.DeletePrefixOp(markerKey(key)))
		if prev.CreatedIndex == 0 {
			// An implied directory takes the indexes of its first key.
			if n, _, err := h.get(ctx, &keyReq{key: key}); err == nil {
				prev.CreatedIndex, prev.ModifiedIndex = n.Node.CreatedIndex, n.Node.ModifiedIndex
			}
		}
	}
	if q.prevValue != nil || q.prevIndex > 0 {
		action = "compareAndDelete"
		if cause := compareFail(q, prev); cause != "" {
			return nil, 0, newError(EcodeTestFailed, cause, s.rev)
		}
	}
	newTTLCache(h.kv).fill(ctx, prev)
	res, err := h.kv.Txn(ctx, conds, ops...)
	if err != nil {
		return nil, 0, err
	}
	if !res.Succeeded {
		return nil, 0, errRetry
	}
	node := &Node{Key: key, Dir: prev.Dir, ModifiedIndex: res.Rev, CreatedIndex: prev.CreatedIndex}
	return &Event{Action: action, Node: node, PrevNode: prev}, res.Rev, nil
}
