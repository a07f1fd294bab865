package etcdv2

import (
	"context"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// dirMarkerValue is the value of a directory marker: the v3 key dir+"/"
// (see the package doc).
const dirMarkerValue = "\x00etcd-v2-directory"

// Node is etcd v2's node.
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex int64      `json:"modifiedIndex,omitempty"`
	CreatedIndex  int64      `json:"createdIndex,omitempty"`

	lease  etcdkv.LeaseID
	marker bool // a dir with a marker (otherwise implied by its keys)
}

// Event is etcd v2's answer to a keys request.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
	Refresh  bool   `json:"refresh,omitempty"`
}

func markerKey(dir string) string { return dir + "/" }

func isMarker(kv etcdkv.KV) bool {
	return strings.HasSuffix(kv.Key, "/") && string(kv.Value) == dirMarkerValue && cleanKey(strings.TrimSuffix(kv.Key, "/"))
}

// cleanKey reports whether a v3 key is a v2 key: absolute, clean, not root.
func cleanKey(k string) bool {
	return len(k) > 1 && k[0] == '/' && path.Clean(k) == k
}

func fileNode(kv etcdkv.KV) *Node {
	v := string(kv.Value)
	return &Node{Key: kv.Key, Value: &v, CreatedIndex: kv.CreateRev, ModifiedIndex: kv.ModRev, lease: kv.Lease}
}

func markerNode(kv etcdkv.KV) *Node {
	return &Node{Key: strings.TrimSuffix(kv.Key, "/"), Dir: true, CreatedIndex: kv.CreateRev, ModifiedIndex: kv.ModRev,
		lease: kv.Lease, marker: true}
}

// kvNode is the node of a v3 key (a file or a marker); nil for a key v2
// cannot show.
func kvNode(kv etcdkv.KV) *Node {
	if isMarker(kv) {
		return markerNode(kv)
	}
	if cleanKey(kv.Key) {
		return fileNode(kv)
	}
	return nil
}

// buildDir builds the directory dir (v2 key, "/" for the root) from kvs,
// every v3 key under dir+"/" in key order. Directories without a marker
// take the smallest creation revision of their keys as their indexes.
func buildDir(dir string, kvs []etcdkv.KV) *Node {
	root := &Node{Key: dir, Dir: true}
	if dir == "/" {
		root.Key = ""
	}
	dirs := map[string]*Node{dir: root}
	var ensure func(p string) *Node
	ensure = func(p string) *Node {
		if n := dirs[p]; n != nil {
			return n
		}
		parent := ensure(path.Dir(p))
		n := &Node{Key: p, Dir: true}
		dirs[p] = n
		parent.Nodes = append(parent.Nodes, n)
		return n
	}
	implied := func(p string, rev int64) {
		for ; p != dir && p != "/"; p = path.Dir(p) {
			n := dirs[p]
			if n == nil || n.marker {
				continue
			}
			if n.CreatedIndex == 0 || rev < n.CreatedIndex {
				n.CreatedIndex, n.ModifiedIndex = rev, rev
			}
		}
		if dir != "/" && !root.marker && (root.CreatedIndex == 0 || rev < root.CreatedIndex) {
			root.CreatedIndex, root.ModifiedIndex = rev, rev
		}
	}
	for _, kv := range kvs {
		switch {
		case isMarker(kv):
			p := strings.TrimSuffix(kv.Key, "/")
			n := ensure(p)
			m := markerNode(kv)
			n.CreatedIndex, n.ModifiedIndex, n.lease, n.marker = m.CreatedIndex, m.ModifiedIndex, m.lease, true
			implied(path.Dir(p), kv.CreateRev)
		case cleanKey(kv.Key):
			if _, isDir := dirs[kv.Key]; isDir {
				continue // a key shadowed by a directory
			}
			parent := ensure(path.Dir(kv.Key))
			parent.Nodes = append(parent.Nodes, fileNode(kv))
			implied(path.Dir(kv.Key), kv.CreateRev)
		}
	}
	return root
}

// finish sorts n's children, hides those whose name starts with "_",
// drops the grandchildren unless recursive, and fills in TTLs.
func (h *handler) finish(ctx context.Context, n *Node, recursive bool, ttls *ttlCache) {
	ttls.fill(ctx, n)
	if !n.Dir {
		return
	}
	kept := n.Nodes[:0]
	for _, c := range n.Nodes {
		if strings.HasPrefix(path.Base(c.Key), "_") {
			continue
		}
		kept = append(kept, c)
	}
	n.Nodes = kept
	sort.Slice(n.Nodes, func(i, j int) bool { return n.Nodes[i].Key < n.Nodes[j].Key })
	for _, c := range n.Nodes {
		if c.Dir && !recursive {
			c.Nodes = nil
			ttls.fill(ctx, c)
			continue
		}
		h.finish(ctx, c, recursive, ttls)
	}
	if len(n.Nodes) == 0 {
		n.Nodes = nil
	}
}

// ttlCache asks etcd for the TTL of each lease once per request.
type ttlCache struct {
	kv   *etcdkv.Client
	now  time.Time
	left map[etcdkv.LeaseID]time.Duration
}

func newTTLCache(kv *etcdkv.Client) *ttlCache {
	return &ttlCache{kv: kv, now: time.Now(), left: map[etcdkv.LeaseID]time.Duration{}}
}

func (c *ttlCache) fill(ctx context.Context, n *Node) {
	if n.lease == etcdkv.NoLease || n.Expiration != nil {
		return
	}
	left, ok := c.left[n.lease]
	if !ok {
		rem, _, err := c.kv.TimeToLive(ctx, n.lease)
		if err != nil {
			rem = 0
		}
		left = rem
		c.left[n.lease] = left
	}
	setTTL(n, c.now, left)
}

// setTTL sets n's expiration and TTL (whole seconds, at least 1).
func setTTL(n *Node, now time.Time, left time.Duration) {
	exp := now.Add(left).UTC()
	n.Expiration = &exp
	n.TTL = max(int64((left+time.Second-1)/time.Second), 1)
}
