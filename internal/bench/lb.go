package bench

import "context"

// runLB is part 4 of the benchmark issue: it waits for the load balancer
// (internal/lb) to land. It reports that it did not run.
func runLB(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "lb", "load balancer scenario: not implemented yet (waits for internal/lb)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	e.printf("lb: not implemented yet; this scenario comes with the load balancer (internal/lb), part 4 of the benchmark issue\n")
	return map[string]any{"status": "not implemented", "note": "part 4 of the benchmark issue; lands with internal/lb"}, nil
}
