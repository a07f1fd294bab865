package client

import (
	"context"
	"net/http"
	"time"
)

// Timer is one launched .timer unit (GET /timers): where it runs, the
// unit it activates, when it elapses next and when it last fired.
type Timer struct {
	Unit      string    `json:"unit"`
	Activates string    `json:"activates"`
	Machine   string    `json:"machine,omitempty"`
	Next      time.Time `json:"next,omitzero"`
	Last      time.Time `json:"last,omitzero"`
}

// TimerList is the answer of GET /timers.
type TimerList struct {
	Timers []Timer `json:"timers"`
}

// Timers lists the launched .timer units, by next elapse (those without
// one last), then name.
func (c *Client) Timers(ctx context.Context) ([]Timer, error) {
	var r TimerList
	if err := c.call(ctx, request{method: http.MethodGet, path: "timers"}, &r); err != nil {
		return nil, err
	}
	return r.Timers, nil
}
