package fleet

import "time"

// Service is one endpoint a unit declares in an [X-Service] section (see
// unitfile.Services), after specifier expansion and with defaults filled in.
type Service struct {
	// Name is the service name: the key segment under /services/.
	Name string `json:"name"`
	// Port is the TCP port the unit listens on (1..65535).
	Port int `json:"port"`
	// Protocol is "http" or "tcp".
	Protocol string `json:"protocol"`
	// Tags are free-form labels.
	Tags []string `json:"tags,omitempty"`
	// CheckHTTP is a path (starting with '/') to GET; 2xx and 3xx pass.
	CheckHTTP string `json:"checkHTTP,omitempty"`
	// CheckTCP checks that the port accepts a connection.
	CheckTCP bool `json:"checkTCP,omitempty"`
	// CheckExec is a command (run with /bin/sh -c) that passes on exit 0.
	CheckExec string `json:"checkExec,omitempty"`
	// CheckInterval is the time between two checks.
	CheckInterval time.Duration `json:"checkInterval,omitempty"`
	// CheckTimeout bounds one check.
	CheckTimeout time.Duration `json:"checkTimeout,omitempty"`
	// CheckThreshold is how many consecutive failures remove the endpoint
	// and how many consecutive successes restore it.
	CheckThreshold int `json:"checkThreshold,omitempty"`
}

// HasCheck reports whether the service declares a health check.
func (s Service) HasCheck() bool {
	return s.CheckHTTP != "" || s.CheckTCP || s.CheckExec != ""
}
