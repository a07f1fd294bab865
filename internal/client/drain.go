package client

import (
	"context"
	"net/http"
	"net/url"
)

// Drain marks a machine as draining (on) or not (off): a draining machine
// gets no units and its units move elsewhere.
func (c *Client) Drain(ctx context.Context, machineID string, on bool) error {
	method := http.MethodPut
	if !on {
		method = http.MethodDelete
	}
	return c.call(ctx, request{method: method, path: "machines/" + url.PathEscape(machineID) + "/drain"}, nil)
}
