package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// KVNode is a key (or, in listings, a directory) of the kv extension.
type KVNode struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	Dir   bool   `json:"dir,omitempty"`
	// TTL is the seconds left for a key on a lease (0: none).
	TTL int64 `json:"ttl,omitempty"`
}

// KVEvent is one change seen by KVWatch.
type KVEvent struct {
	Action string `json:"action"` // set, delete
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
}

// kvPath turns an etcd key into its API path, escaping each segment.
func kvPath(key string) string {
	segs := strings.Split(strings.TrimPrefix(key, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "kv/" + strings.Join(segs, "/")
}

// KVGet returns a key; a missing key is an *APIError with code 404.
func (c *Client) KVGet(ctx context.Context, key string) (KVNode, error) {
	var n KVNode
	err := c.call(ctx, request{method: http.MethodGet, path: kvPath(key)}, &n)
	return n, err
}

// KVList lists the children of key (recursive: every key below it).
func (c *Client) KVList(ctx context.Context, key string, recursive bool) ([]KVNode, error) {
	q := url.Values{"list": {"true"}}
	if recursive {
		q.Set("recursive", "true")
	}
	var p struct {
		Nodes []KVNode `json:"nodes"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: kvPath(key), query: q}, &p)
	return p.Nodes, err
}

// KVSet sets a key; ttl > 0 puts it on a fresh lease of that length.
func (c *Client) KVSet(ctx context.Context, key, value string, ttl time.Duration) (KVNode, error) {
	body := map[string]any{"value": value}
	if ttl > 0 {
		body["ttl"] = ttl.String()
	}
	var n KVNode
	err := c.call(ctx, request{method: http.MethodPut, path: kvPath(key), body: body}, &n)
	return n, err
}

// KVDelete deletes a key (recursive: and every key below it).
func (c *Client) KVDelete(ctx context.Context, key string, recursive bool) error {
	q := url.Values{}
	if recursive {
		q.Set("recursive", "true")
	}
	return c.call(ctx, request{method: http.MethodDelete, path: kvPath(key), query: q}, nil)
}

// KVWatch calls fn for each change of key (recursive: and below it) until
// fn returns false, ctx ends (not an error) or the stream breaks.
func (c *Client) KVWatch(ctx context.Context, key string, recursive bool, fn func(KVEvent) bool) error {
	q := url.Values{"wait": {"true"}}
	if recursive {
		q.Set("recursive", "true")
	}
	ended, err := c.streamLines(ctx, request{method: http.MethodGet, path: kvPath(key), query: q}, func(line []byte) (bool, error) {
		var ev KVEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return false, fmt.Errorf("decoding watch event: %w", err)
		}
		return fn(ev), nil
	})
	switch {
	case !ended:
		return err
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("watch of %s: %w", key, err)
	}
	return fmt.Errorf("watch of %s: the server ended the stream", key)
}
