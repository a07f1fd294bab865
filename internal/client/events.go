package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fleetd/fleet/internal/fleet"
)

// Events streams cluster events (GET /fleet/v1/events) to fn, one call per
// event in revision order, until ctx ends (not an error), the server ends
// the stream, or fn returns an error (returned). since > 0 starts at that
// etcd revision instead of now.
func (c *Client) Events(ctx context.Context, since int64, fn func(fleet.Event) error) error {
	q := url.Values{}
	if since > 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	ended, err := c.streamLines(ctx, request{method: http.MethodGet, path: "events", query: q}, func(line []byte) (bool, error) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return true, nil // keep-alive
		}
		var e fleet.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return false, fmt.Errorf("decoding event: %w", err)
		}
		return true, fn(e)
	})
	if ended && ctx.Err() != nil {
		return nil
	}
	return err
}

// streamLines sends req (a GET whose answer streams: no request timeout)
// and calls fn with each line of the answer (up to 4 MiB; the slice is
// reused) until fn returns false or an error (returned), or the answer
// ends: then ended is true and err the read error (nil at the end of the
// stream).
func (c *Client) streamLines(ctx context.Context, req request, fn func(line []byte) (bool, error)) (ended bool, err error) {
	req.stream = true
	resp, cancel, err := c.do(ctx, req)
	if err != nil {
		return false, err
	}
	defer cancel()
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if more, err := fn(sc.Bytes()); err != nil || !more {
			return false, err
		}
	}
	return true, sc.Err()
}
