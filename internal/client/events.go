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
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: "events", query: q, stream: true})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keep-alive
		}
		var e fleet.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("decoding event: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
