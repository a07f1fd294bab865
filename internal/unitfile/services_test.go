package unitfile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestServices(t *testing.T) {
	def := func(s fleet.Service) fleet.Service {
		if s.Protocol == "" {
			s.Protocol = "tcp"
		}
		if s.CheckInterval == 0 {
			s.CheckInterval = DefaultCheckInterval
		}
		if s.CheckTimeout == 0 {
			s.CheckTimeout = DefaultCheckTimeout
		}
		if s.CheckThreshold == 0 {
			s.CheckThreshold = DefaultCheckThreshold
		}
		return s
	}
	tests := []struct {
		name, unit, file string
		want             []fleet.Service
		err              string // substring; "" = no error
	}{
		{name: "none", unit: "a.service", file: "[Service]\nExecStart=/bin/true\n"},
		{
			name: "one", unit: "a.service",
			file: "[X-Service]\nName=web\nPort=80\n",
			want: []fleet.Service{def(fleet.Service{Name: "web", Port: 80})},
		},
		{
			name: "seed 004 instance", unit: "kappa-test@3.service",
			file: "[Service]\nExecStart=/x\n[X-Service]\nName=kappa-test\nPort=800%i\nCheckHTTP=/\n",
			want: []fleet.Service{def(fleet.Service{Name: "kappa-test", Port: 8003, Protocol: "http", CheckHTTP: "/"})},
		},
		{
			name: "specifiers", unit: "api@blue.service",
			file: "[X-Service]\nName=%p-%i\nPort=9000\nTags=%n,%N\n",
			want: []fleet.Service{def(fleet.Service{Name: "api-blue", Port: 9000, Tags: []string{"api@blue.service", "api@blue"}})},
		},
		{
			name: "all keys", unit: "a.service",
			file: "[X-Service]\nName=db\nPort=5432\nProtocol=TCP\nTags=primary, eu ,,primary\nCheckTCP=yes\nCheckInterval=1min 30s\nCheckTimeout=500ms\nCheckThreshold=3\n",
			want: []fleet.Service{{Name: "db", Port: 5432, Protocol: "tcp", Tags: []string{"primary", "eu"}, CheckTCP: true,
				CheckInterval: 90 * time.Second, CheckTimeout: 500 * time.Millisecond, CheckThreshold: 3}},
		},
		{
			name: "exec check, bare seconds", unit: "a.service",
			file: "[X-Service]\nName=q\nPort=1\nCheckExec=test -f /tmp/ok\nCheckInterval=2\n",
			want: []fleet.Service{def(fleet.Service{Name: "q", Port: 1, CheckExec: "test -f /tmp/ok", CheckInterval: 2 * time.Second})},
		},
		{
			name: "timeout default capped by a short interval", unit: "a.service",
			file: "[X-Service]\nName=q\nPort=65535\nCheckTCP=yes\nCheckInterval=1s\n",
			want: []fleet.Service{def(fleet.Service{Name: "q", Port: 65535, CheckTCP: true, CheckInterval: time.Second, CheckTimeout: time.Second})},
		},
		{
			name: "two sections", unit: "a.service",
			file: "[X-Service]\nName=web\nPort=80\n[Service]\nExecStart=/x\n[X-Service]\nName=admin\nPort=81\nProtocol=http\n",
			want: []fleet.Service{def(fleet.Service{Name: "web", Port: 80}), def(fleet.Service{Name: "admin", Port: 81, Protocol: "http"})},
		},
		{
			name: "two sections, keys in another order", unit: "a.service",
			file: "[X-Service]\nPort=80\nName=web\n[X-Service]\nPort=81\nName=admin\n",
			want: []fleet.Service{def(fleet.Service{Name: "web", Port: 80}), def(fleet.Service{Name: "admin", Port: 81})},
		},
		{
			name: "same name, two ports", unit: "a.service",
			file: "[X-Service]\nName=web\nPort=80\n[X-Service]\nName=web\nPort=443\n",
			want: []fleet.Service{def(fleet.Service{Name: "web", Port: 80}), def(fleet.Service{Name: "web", Port: 443})},
		},
		{name: "unknown key", unit: "a.service", file: "[X-Service]\nName=web\nPort=80\nHealth=/\n", err: `unknown key "Health"`},
		{name: "key case matters", unit: "a.service", file: "[X-Service]\nname=web\nPort=80\n", err: `unknown key "name"`},
		{name: "no name", unit: "a.service", file: "[X-Service]\nPort=80\n", err: "Name= is required"},
		{name: "no port", unit: "a.service", file: "[X-Service]\nName=web\n", err: "Port= is required"},
		{name: "repeated key starts an endpoint", unit: "a.service", file: "[X-Service]\nName=web\nPort=80\nTags=a\nTags=b\n", err: "endpoint 2: Name= is required"},
		{name: "port zero", unit: "a.service", file: "[X-Service]\nName=web\nPort=0\n", err: "Port=0: out of range 1..65535"},
		{name: "port too big", unit: "a.service", file: "[X-Service]\nName=web\nPort=65536\n", err: "Port=65536: out of range"},
		{name: "port expands too big", unit: "k@99.service", file: "[X-Service]\nName=web\nPort=800%i\n", err: "Port=80099: out of range"},
		{name: "port not a number", unit: "a.service", file: "[X-Service]\nName=web\nPort=http\n", err: "Port=http: not a port number"},
		{name: "bad protocol", unit: "a.service", file: "[X-Service]\nName=web\nPort=80\nProtocol=udp\n", err: "Protocol=udp: expect http or tcp"},
		{name: "bad name", unit: "a.service", file: "[X-Service]\nName=we/b\nPort=80\n", err: `Name=we/b: character '/' not allowed`},
		{name: "dots name", unit: "a.service", file: "[X-Service]\nName=..\nPort=80\n", err: "only dots"},
		{name: "http path", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckHTTP=health\n", err: "CheckHTTP=health: must be a path starting with '/'"},
		{name: "two checks", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckHTTP=/\nCheckTCP=yes\n", err: "only one of CheckHTTP="},
		{name: "bad bool", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckTCP=maybe\n", err: "CheckTCP=maybe: not a boolean"},
		{name: "bad interval", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckInterval=soon\n", err: "CheckInterval=soon"},
		{name: "bad unit", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckInterval=5 parsecs\n", err: `unknown time unit "parsecs"`},
		{name: "zero interval", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckInterval=0\n", err: "CheckInterval=0: must be positive"},
		{name: "timeout above interval", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckInterval=1s\nCheckTimeout=2s\n", err: "CheckTimeout=2s is longer than CheckInterval=1s"},
		{name: "bad threshold", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\nCheckThreshold=0\n", err: "CheckThreshold=0: expect a number in 1..100"},
		{name: "duplicate endpoint", unit: "a.service", file: "[X-Service]\nName=w\nPort=80\n[X-Service]\nName=w\nPort=80\n", err: "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := Parse([]byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Services(tt.unit, opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// The stored form (sections merged) gives the same endpoints.
			back, err := Parse(Serialize(opts))
			if err != nil {
				t.Fatal(err)
			}
			again, err := Services(tt.unit, back)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("after Serialize: %+v, %v", again, err)
			}
		})
	}
}

func TestParseCheckSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5": 5 * time.Second, "1.5s": 1500 * time.Millisecond, "500ms": 500 * time.Millisecond,
		"1min 30s": 90 * time.Second, "1m30s": 90 * time.Second, "2h": 2 * time.Hour, "10 sec": 10 * time.Second,
		"250us": 250 * time.Microsecond,
	} {
		got, err := parseCheckSpan(in)
		if err != nil || got != want {
			t.Errorf("parseCheckSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "s", "5 parsecs", "1..2s", "-1s", "99999999h"} {
		if d, err := parseCheckSpan(in); err == nil {
			t.Errorf("parseCheckSpan(%q) = %v, want an error", in, d)
		}
	}
}

func TestValidateOptionsServices(t *testing.T) {
	opts := func(s string) []fleet.UnitOption {
		o, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tmpl := opts("[Service]\nExecStart=/x\n[X-Service]\nName=kappa-test\nPort=800%i\nCheckHTTP=/\n")
	if err := ValidateOptions("kappa-test@.service", tmpl); err != nil {
		t.Errorf("template: %v", err)
	}
	if err := ValidateOptions("kappa-test@1.service", tmpl); err != nil {
		t.Errorf("instance: %v", err)
	}
	if err := ValidateOptions("kappa-test@77.service", tmpl); err == nil || !strings.Contains(err.Error(), "Port=80077") {
		t.Errorf("instance 77: %v", err)
	}
	if err := ValidateOptions("a.service", opts("[Service]\nExecStart=/x\n[X-Service]\nName=a\nPort=99999\n")); err == nil {
		t.Error("port 99999 accepted")
	}
}
