package unitfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

// ServiceSection is the section that declares a unit's service endpoints.
const ServiceSection = "X-Service"

// Defaults and bounds of [X-Service] health checks.
const (
	DefaultCheckInterval  = 10 * time.Second
	DefaultCheckTimeout   = 2 * time.Second
	DefaultCheckThreshold = 2
	MaxCheckThreshold     = 100
	// MaxServices bounds the endpoints one unit may declare.
	MaxServices = 64
	// maxServiceName bounds a service name (one etcd key segment).
	maxServiceName = 253
)

// [X-Service] keys.
const (
	svcName           = "Name"
	svcPort           = "Port"
	svcProtocol       = "Protocol"
	svcTags           = "Tags"
	svcCheckHTTP      = "CheckHTTP"
	svcCheckTCP       = "CheckTCP"
	svcCheckExec      = "CheckExec"
	svcCheckInterval  = "CheckInterval"
	svcCheckTimeout   = "CheckTimeout"
	svcCheckThreshold = "CheckThreshold"
)

// serviceKeyList names the keys in error messages.
const serviceKeyList = "Name, Port, Protocol, Tags, CheckHTTP, CheckTCP, CheckExec, CheckInterval, CheckTimeout, CheckThreshold"

func isServiceKey(k string) bool {
	switch k {
	case svcName, svcPort, svcProtocol, svcTags, svcCheckHTTP, svcCheckTCP,
		svcCheckExec, svcCheckInterval, svcCheckTimeout, svcCheckThreshold:
		return true
	}
	return false
}

// Services returns the endpoints a unit declares in its [X-Service]
// sections; unitName feeds the %n %N %p %i specifiers (expanded in every
// value, as in [X-Fleet]: nothing is expanded when the name has no '.').
//
// Section boundaries: Parse keeps repeated sections but their options carry
// no boundary, and the stored form (Serialize) merges them into one. So the
// [X-Service] options are read in file order, and an endpoint ends where a
// key repeats: the repeated key starts the next endpoint. Each endpoint
// needs Name= and Port=, so a key given twice by mistake shows up as an
// endpoint without Name= or Port=.
//
// Values: Name in [A-Za-z0-9_.-] (not only dots); Port 1..65535;
// Protocol http or tcp (default http with CheckHTTP=, else tcp); Tags
// comma separated (empty ones and duplicates dropped); CheckHTTP a path
// starting with '/'; CheckTCP a boolean; CheckExec a shell command; at
// most one check; CheckInterval (default 10s) and CheckTimeout (default 2s,
// at most the interval) systemd time spans ("500ms", "1min 30s", a bare
// number is seconds); CheckThreshold 1..100 (default 2). Unknown keys are
// errors. Errors name the key and the value.
func Services(unitName string, opts []fleet.UnitOption) ([]fleet.Service, error) {
	n := ParseName(unitName)
	expand := strings.Contains(unitName, ".")
	type group struct {
		vals  map[string]string
		order []string
	}
	var groups []*group
	var cur *group
	for _, o := range opts {
		if o.Section != ServiceSection {
			continue
		}
		if !isServiceKey(o.Name) {
			return nil, fmt.Errorf("[%s]: unknown key %q (known keys: %s)", ServiceSection, o.Name, serviceKeyList)
		}
		if cur == nil {
			cur = &group{vals: map[string]string{}}
			groups = append(groups, cur)
		} else if _, dup := cur.vals[o.Name]; dup {
			cur = &group{vals: map[string]string{}}
			groups = append(groups, cur)
		}
		v := JoinContinuations(o.Value)
		if expand {
			v = expandFleetSpecifiers(v, n)
		}
		cur.vals[o.Name] = strings.TrimSpace(v)
		cur.order = append(cur.order, o.Name)
	}
	if len(groups) > MaxServices {
		return nil, fmt.Errorf("[%s]: %d endpoints declared; the limit is %d", ServiceSection, len(groups), MaxServices)
	}
	out := make([]fleet.Service, 0, len(groups))
	seen := map[string]bool{}
	for i, g := range groups {
		where := "[" + ServiceSection + "]"
		if len(groups) > 1 {
			where = fmt.Sprintf("[%s] endpoint %d", ServiceSection, i+1)
		}
		s, err := parseService(g.vals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		id := s.Name + ":" + strconv.Itoa(s.Port)
		if seen[id] {
			return nil, fmt.Errorf("%s: Name=%s Port=%d is declared twice", where, s.Name, s.Port)
		}
		seen[id] = true
		out = append(out, s)
	}
	return out, nil
}

func parseService(vals map[string]string) (fleet.Service, error) {
	s := fleet.Service{
		CheckInterval:  DefaultCheckInterval,
		CheckTimeout:   DefaultCheckTimeout,
		CheckThreshold: DefaultCheckThreshold,
	}
	name, ok := vals[svcName]
	if !ok || name == "" {
		return s, errors.New("Name= is required (each [X-Service] section declares one endpoint; a key given twice starts a new one)")
	}
	if err := validServiceName(name); err != nil {
		return s, fmt.Errorf("Name=%s: %w", name, err)
	}
	s.Name = name
	port, ok := vals[svcPort]
	if !ok || port == "" {
		return s, fmt.Errorf("Port= is required for Name=%s", name)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return s, fmt.Errorf("Port=%s: not a port number", port)
	}
	if p < 1 || p > 65535 {
		return s, fmt.Errorf("Port=%s: out of range 1..65535", port)
	}
	s.Port = p
	if v, ok := vals[svcTags]; ok {
		seen := map[string]bool{}
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" || seen[t] {
				continue
			}
			seen[t] = true
			s.Tags = append(s.Tags, t)
		}
	}
	checks := 0
	if v, ok := vals[svcCheckHTTP]; ok && v != "" {
		if !strings.HasPrefix(v, "/") {
			return s, fmt.Errorf("CheckHTTP=%s: must be a path starting with '/'", v)
		}
		if strings.ContainsAny(v, " \t") {
			return s, fmt.Errorf("CheckHTTP=%s: a path may not contain white space", v)
		}
		s.CheckHTTP = v
		checks++
	}
	if v, ok := vals[svcCheckTCP]; ok && v != "" {
		b, err := ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("CheckTCP=%s: %w", v, err)
		}
		s.CheckTCP = b
		if b {
			checks++
		}
	}
	if v, ok := vals[svcCheckExec]; ok && v != "" {
		s.CheckExec = v
		checks++
	}
	if checks > 1 {
		return s, errors.New("only one of CheckHTTP=, CheckTCP=yes and CheckExec= may be set")
	}
	switch v := strings.ToLower(vals[svcProtocol]); v {
	case "":
		s.Protocol = "tcp"
		if s.CheckHTTP != "" {
			s.Protocol = "http"
		}
	case "http", "tcp":
		s.Protocol = v
	default:
		return s, fmt.Errorf("Protocol=%s: expect http or tcp", vals[svcProtocol])
	}
	timeoutSet := false
	if v, ok := vals[svcCheckInterval]; ok && v != "" {
		d, err := parseCheckSpan(v)
		if err != nil {
			return s, fmt.Errorf("CheckInterval=%s: %w", v, err)
		}
		if d <= 0 {
			return s, fmt.Errorf("CheckInterval=%s: must be positive", v)
		}
		s.CheckInterval = d
	}
	if v, ok := vals[svcCheckTimeout]; ok && v != "" {
		d, err := parseCheckSpan(v)
		if err != nil {
			return s, fmt.Errorf("CheckTimeout=%s: %w", v, err)
		}
		if d <= 0 {
			return s, fmt.Errorf("CheckTimeout=%s: must be positive", v)
		}
		s.CheckTimeout, timeoutSet = d, true
	}
	if s.CheckTimeout > s.CheckInterval {
		if timeoutSet {
			return s, fmt.Errorf("CheckTimeout=%s is longer than CheckInterval=%s", s.CheckTimeout, s.CheckInterval)
		}
		s.CheckTimeout = s.CheckInterval
	}
	if v, ok := vals[svcCheckThreshold]; ok && v != "" {
		t, err := strconv.Atoi(v)
		if err != nil || t < 1 || t > MaxCheckThreshold {
			return s, fmt.Errorf("CheckThreshold=%s: expect a number in 1..%d", v, MaxCheckThreshold)
		}
		s.CheckThreshold = t
	}
	return s, nil
}

func validServiceName(name string) error {
	if len(name) > maxServiceName {
		return fmt.Errorf("longer than %d bytes", maxServiceName)
	}
	if strings.Trim(name, ".") == "" {
		return errors.New("a name may not be only dots")
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return fmt.Errorf("character %q not allowed (use A-Z a-z 0-9 _ . -)", c)
		}
	}
	return nil
}

// maxCheckSpan bounds CheckInterval= and CheckTimeout=.
const maxCheckSpan = 1e6 * time.Second

// parseCheckSpan parses CheckInterval= and CheckTimeout=: a systemd time
// span (ParseTimespan), finite and at most maxCheckSpan (about 11.5 days).
func parseCheckSpan(v string) (time.Duration, error) {
	d, inf, err := ParseTimespan(v)
	if err != nil {
		return 0, err
	}
	if inf || d > maxCheckSpan {
		return 0, errors.New("time span out of range")
	}
	return d, nil
}
