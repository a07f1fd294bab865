package client

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// DashboardLogin is a one-time login URL for fleetd's dashboard
// (POST /fleet/v1/ui-login).
type DashboardLogin struct {
	// URL logs a browser in once.
	URL string `json:"url"`
	// Expires is when URL stops working.
	Expires time.Time `json:"expires"`
	// SessionSeconds is how long the browser stays logged in.
	SessionSeconds int `json:"sessionSeconds"`
}

// DashboardLogin asks fleetd for a one-time dashboard login URL (this
// needs the admin credential).
func (c *Client) DashboardLogin(ctx context.Context) (*DashboardLogin, error) {
	var l DashboardLogin
	if err := c.call(ctx, request{method: http.MethodPost, path: "ui-login"}, &l); err != nil {
		return nil, err
	}
	if l.URL == "" {
		return nil, errors.New("fleetd answered no login URL")
	}
	return &l, nil
}
