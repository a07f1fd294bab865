package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/fleetd/fleet/internal/rollout"
)

// RolloutGates are the gates of a rollout on the wire: empty fields take
// the server's defaults (maxParallel 1, maxSurge 0, minHealthyTime 10s,
// healthyDeadline 5m).
type RolloutGates struct {
	MaxParallel     *int   `json:"maxParallel,omitempty"`
	MaxSurge        int    `json:"maxSurge,omitempty"`
	MinHealthyTime  string `json:"minHealthyTime,omitempty"`
	HealthyDeadline string `json:"healthyDeadline,omitempty"`
	AutoRevert      bool   `json:"autoRevert,omitempty"`
}

// Gates returns gates with every field set.
func Gates(maxParallel int, minHealthyTime, healthyDeadline time.Duration, autoRevert bool) RolloutGates {
	return RolloutGates{
		MaxParallel:     &maxParallel,
		MinHealthyTime:  minHealthyTime.String(),
		HealthyDeadline: healthyDeadline.String(),
		AutoRevert:      autoRevert,
	}
}

// Rollout is a rollout record as the API answers it: the record and a
// line for people about where it is.
type Rollout struct {
	rollout.Rollout
	Progress string `json:"progress"`
}

// Revision is one kept file of a unit or template (GET
// /units/{name}/history).
type Revision struct {
	Revision int       `json:"revision"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	User     string    `json:"user,omitempty"`
	// Current marks the revision the unit has now.
	Current bool `json:"current,omitempty"`
}

// Message is the message of err: the envelope's for an *APIError (its
// HTTP status text if it has none), else err's text.
func Message(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.Message == "" {
			return http.StatusText(ae.Code)
		}
		return ae.Message
	}
	return err.Error()
}

// IsCode reports whether err is an *APIError with code.
func IsCode(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

func rolloutPath(unit string) string { return "rollouts/" + url.PathEscape(unit) }

// StartRollout gives unit the new file opts and rolls what runs it
// (POST /rollouts). Errors are *APIError: 404 unknown unit, 400 invalid
// file or gates, 409 nothing to roll or a rollout in progress, 422 the
// file was updated but nothing runs it (no rollout was started).
func (c *Client) StartRollout(ctx context.Context, unit string, opts []*UnitOption, g RolloutGates) (*Rollout, error) {
	body := struct {
		Unit    string        `json:"unit"`
		Options []*UnitOption `json:"options"`
		RolloutGates
	}{Unit: unit, Options: opts, RolloutGates: g}
	var r Rollout
	if err := c.call(ctx, request{method: http.MethodPost, path: "rollouts", body: body}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// UndoRollout rolls unit back to toRevision (0: the revision before the
// current one) under gates g (POST /rollouts/{unit}/undo).
func (c *Client) UndoRollout(ctx context.Context, unit string, toRevision int, g RolloutGates) (*Rollout, error) {
	body := struct {
		ToRevision int `json:"toRevision,omitempty"`
		RolloutGates
	}{ToRevision: toRevision, RolloutGates: g}
	var r Rollout
	if err := c.call(ctx, request{method: http.MethodPost, path: rolloutPath(unit) + "/undo", body: body}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollouts lists every rollout record (running and over), by unit.
func (c *Client) Rollouts(ctx context.Context) ([]Rollout, error) {
	var p struct {
		Rollouts []Rollout `json:"rollouts"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "rollouts"}, &p); err != nil {
		return nil, err
	}
	return p.Rollouts, nil
}

// Rollout returns unit's rollout record (the last one); none is an
// *APIError with code 404 ("no rollout of X").
func (c *Client) Rollout(ctx context.Context, unit string) (*Rollout, error) {
	var r Rollout
	if err := c.call(ctx, request{method: http.MethodGet, path: rolloutPath(unit)}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (c *Client) rolloutAction(ctx context.Context, unit, action string) (*Rollout, error) {
	var r Rollout
	if err := c.call(ctx, request{method: http.MethodPost, path: rolloutPath(unit) + "/" + action}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PauseRollout stops unit's rollout from starting new batches (409 when it
// is not running).
func (c *Client) PauseRollout(ctx context.Context, unit string) (*Rollout, error) {
	return c.rolloutAction(ctx, unit, "pause")
}

// ResumeRollout lets unit's paused rollout go on (409 when it is not
// paused).
func (c *Client) ResumeRollout(ctx context.Context, unit string) (*Rollout, error) {
	return c.rolloutAction(ctx, unit, "resume")
}

// AbortRollout ends unit's rollout where it is (409 when it is over).
func (c *Client) AbortRollout(ctx context.Context, unit string) (*Rollout, error) {
	return c.rolloutAction(ctx, unit, "abort")
}

// History lists the kept files of unit (an instance: of its template),
// oldest first; 404 when the unit does not exist and has none.
func (c *Client) History(ctx context.Context, unit string) ([]Revision, error) {
	var p struct {
		Revisions []Revision `json:"revisions"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: unitPath(unit) + "/history"}, &p); err != nil {
		return nil, err
	}
	return p.Revisions, nil
}
