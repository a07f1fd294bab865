package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// JobRun is one machine's record of how a Job unit's run ended.
type JobRun struct {
	MachineID string `json:"machineID"`
	// Result is "succeeded" or "failed".
	Result     string    `json:"result"`
	UnitResult string    `json:"unitResult,omitempty"`
	Exit       string    `json:"exit,omitempty"`
	Hash       string    `json:"hash"`
	Finished   time.Time `json:"finished"`
}

// JobRuns is the answer of GET /jobs/{unit}.
type JobRuns struct {
	Unit string   `json:"unit"`
	Runs []JobRun `json:"runs"`
}

func jobsPath(unit string) string { return "jobs/" + url.PathEscape(unit) }

// Jobs returns the records of unit's runs, by machine (none: an empty
// list).
func (c *Client) Jobs(ctx context.Context, unit string) ([]JobRun, error) {
	var r JobRuns
	if err := c.call(ctx, request{method: http.MethodGet, path: jobsPath(unit)}, &r); err != nil {
		return nil, err
	}
	return r.Runs, nil
}

// DeleteJobs deletes the records of unit's runs, so that the job runs
// again (admin).
func (c *Client) DeleteJobs(ctx context.Context, unit string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: jobsPath(unit)}, nil)
}
