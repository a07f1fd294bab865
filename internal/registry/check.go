package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

// runCheck runs one endpoint's health check until ctx ends, flipping
// c.healthy as the contract says.
func (r *Registry) runCheck(ctx context.Context, unit string, c *checker) {
	svc := c.svc
	threshold := max(svc.CheckThreshold, 1)
	interval := max(svc.CheckInterval, 10*time.Millisecond)
	everHealthy := false
	passes, fails := 0, 0
	reported := "" // the last result told to OnCheck ("" = passing)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := r.probe(ctx, svc)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			passes, fails = passes+1, 0
		} else {
			passes, fails = 0, fails+1
		}
		if r.cfg.OnCheck != nil {
			result := ""
			if err != nil {
				result = err.Error()
			}
			if result != reported {
				r.cfg.OnCheck(ctx, unit, svc, err)
				reported = result
			}
		}
		changed := false
		r.mu.Lock()
		switch {
		case !c.healthy && err == nil && (!everHealthy || passes >= threshold):
			c.healthy, changed = true, true
		case c.healthy && err != nil && fails >= threshold:
			c.healthy, changed = false, true
		}
		if changed {
			c.since = r.cfg.Now()
		}
		r.mu.Unlock()
		if changed {
			if err == nil {
				everHealthy = true
				r.log.Info("health check passes", "unit", unit, "service", svc.Name, "port", svc.Port)
			} else {
				r.log.Warn("health check fails; removing endpoint", "unit", unit, "service", svc.Name, "port", svc.Port, "failures", fails, "err", err)
			}
			r.kick()
		}
		next := interval
		if !everHealthy {
			next = min(interval, pendingCheckInterval)
		}
		timer.Reset(next)
	}
}

// check runs one check of svc against the public IP.
func (r *Registry) check(ctx context.Context, svc fleet.Service) error {
	timeout := svc.CheckTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := r.cfg.PublicIP
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(svc.Port))
	switch {
	case svc.CheckHTTP != "":
		return checkHTTP(ctx, "http://"+addr+svc.CheckHTTP)
	case svc.CheckTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case svc.CheckExec != "":
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", svc.CheckExec)
		cmd.Env = append(cmd.Environ(), "SERVICE_NAME="+svc.Name, "SERVICE_PORT="+strconv.Itoa(svc.Port), "SERVICE_IP="+host)
		cmd.WaitDelay = time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			if len(out) > 200 {
				out = out[:200]
			}
			return fmt.Errorf("%s: %w: %s", svc.CheckExec, err, out)
		}
		return nil
	}
	return nil
}

func checkHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "fleetd-health-check")
	hc := &http.Client{
		// 3xx passes: do not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return errors.New("GET " + url + ": " + resp.Status)
	}
	return nil
}
