package config

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"testing/iotest"
)

func TestResolveMachineID(t *testing.T) {
	const sysID = "0123456789abcdef0123456789abcdef"
	rnd := bytes.Repeat([]byte{0xab}, 16)
	const genID = "abababababababababababababababab"
	tests := []struct {
		name       string
		configured string
		files      map[string]string
		want       string
		wantStored string // content of /data/machine-id afterwards
		err        string
	}{
		{name: "configured wins", configured: "cafe", files: map[string]string{SystemMachineIDFile: sysID}, want: "cafe"},
		{name: "from /etc/machine-id", files: map[string]string{SystemMachineIDFile: sysID + "\n"}, want: sysID},
		{name: "empty /etc/machine-id, generated", files: map[string]string{SystemMachineIDFile: "\n"}, want: genID, wantStored: genID + "\n"},
		{name: "no /etc/machine-id, generated", files: map[string]string{}, want: genID, wantStored: genID + "\n"},
		{name: "stored reused", files: map[string]string{"/data/machine-id": "feedface\n"}, want: "feedface", wantStored: "feedface\n"},
		{name: "invalid /etc/machine-id", files: map[string]string{SystemMachineIDFile: "../../x\n"}, err: "machine ID from /etc/machine-id"},
		{name: "invalid stored", files: map[string]string{"/data/machine-id": "a b"}, err: "machine ID from /data/machine-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFS(tt.files)
			c := Defaults()
			c.DataDir = "/data"
			c.MachineID = tt.configured
			err := c.ResolveMachineID(ffs.readFile, ffs.writeFile, bytes.NewReader(rnd))
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MachineID != tt.want {
				t.Errorf("MachineID = %q, want %q", c.MachineID, tt.want)
			}
			if c.EtcdName != tt.want[:min(8, len(tt.want))] {
				t.Errorf("EtcdName = %q", c.EtcdName)
			}
			if got := ffs.files["/data/machine-id"]; got != tt.wantStored {
				t.Errorf("stored %q, want %q", got, tt.wantStored)
			}
		})
	}
}

func TestResolveMachineIDGeneratedThenReused(t *testing.T) {
	ffs := newFS(nil)
	c1 := Defaults()
	if err := c1.ResolveMachineID(ffs.readFile, ffs.writeFile, bytes.NewReader(bytes.Repeat([]byte{1}, 16))); err != nil {
		t.Fatal(err)
	}
	if len(c1.MachineID) != 32 {
		t.Fatalf("generated %q", c1.MachineID)
	}
	c2 := Defaults()
	if err := c2.ResolveMachineID(ffs.readFile, ffs.writeFile, bytes.NewReader(bytes.Repeat([]byte{2}, 16))); err != nil {
		t.Fatal(err)
	}
	if c2.MachineID != c1.MachineID {
		t.Errorf("second start got %q, want the kept %q", c2.MachineID, c1.MachineID)
	}
	if ffs.files["/var/lib/fleet/machine-id"] != c1.MachineID+"\n" {
		t.Errorf("files %q", ffs.files)
	}
}

func TestResolveMachineIDErrors(t *testing.T) {
	c := Defaults()
	err := c.ResolveMachineID(func(string) ([]byte, error) { return nil, fs.ErrPermission }, nil, nil)
	wantErr(t, err, "permission denied")

	c = Defaults()
	ffs := newFS(nil)
	err = c.ResolveMachineID(ffs.readFile, ffs.writeFile, iotest.ErrReader(errors.New("no entropy")))
	wantErr(t, err, "generate", "no entropy")

	c = Defaults()
	err = c.ResolveMachineID(ffs.readFile, func(string, []byte) error { return errors.New("read-only") }, bytes.NewReader(make([]byte, 16)))
	wantErr(t, err, "keep generated ID", "read-only")

	c = Defaults()
	c.EtcdName = "mine"
	if err := c.ResolveMachineID(newFS(map[string]string{SystemMachineIDFile: "abcdef0123"}).readFile, nil, nil); err != nil || c.EtcdName != "mine" {
		t.Errorf("etcd name %q err %v", c.EtcdName, err)
	}
}

const routeHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"

func ipnet(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestResolvePublicIP(t *testing.T) {
	ifaces := []NetInterface{
		{Name: "lo", Addrs: []net.Addr{ipnet("127.0.0.1/8"), ipnet("::1/128")}},
		{Name: "eth0", Addrs: []net.Addr{ipnet("fe80::1/64"), ipnet("2001:db8::1/64"), ipnet("169.254.1.1/16"), ipnet("10.1.2.3/24"), ipnet("10.1.2.4/24")}},
		{Name: "wlan0", Addrs: []net.Addr{&net.IPAddr{IP: net.ParseIP("192.168.1.7")}}},
		{Name: "tun0", Addrs: []net.Addr{ipnet("fe80::2/64")}},
	}
	tests := []struct {
		name   string
		route  string
		rerr   error
		ifaces []NetInterface
		ierr   error
		want   string
		warn   string
	}{
		{name: "default route on eth0", route: routeHeader +
			"docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n" +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", want: "10.1.2.3"},
		{name: "lowest metric wins", route: routeHeader +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
			"wlan0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", want: "192.168.1.7"},
		{name: "down route skipped", route: routeHeader +
			"wlan0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n" +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", want: "10.1.2.3"},
		{name: "no default route", route: routeHeader +
			"eth0\t0002010A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", want: "127.0.0.1", warn: "no default route"},
		{name: "empty table", route: "", want: "127.0.0.1", warn: "no default route"},
		{name: "garbage table", route: "x y z\n\x00\n", want: "127.0.0.1", warn: "no default route"},
		{name: "no IPv4 on route interface", route: routeHeader +
			"tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", want: "127.0.0.1", warn: "tun0 has no global-unicast IPv4"},
		{name: "interface gone", route: routeHeader +
			"ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", want: "127.0.0.1", warn: "ppp0 not found"},
		{name: "no /proc", rerr: fs.ErrNotExist, want: "127.0.0.1", warn: "cannot read the routing table"},
		{name: "interfaces fail", route: routeHeader +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", ierr: errors.New("boom"), want: "127.0.0.1", warn: "cannot list interfaces: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged []string
			src := NetSources{
				ReadFile: func(p string) ([]byte, error) {
					if p != RouteFile {
						t.Errorf("read %q", p)
					}
					return []byte(tt.route), tt.rerr
				},
				Interfaces: func() ([]NetInterface, error) { return ifaces, tt.ierr },
				Warnf: func(f string, a ...any) {
					logged = append(logged, f)
				},
			}
			c := Defaults()
			c.ResolvePublicIP(src)
			if c.PublicIP != tt.want {
				t.Errorf("PublicIP = %q, want %q", c.PublicIP, tt.want)
			}
			if tt.warn == "" {
				if len(c.Warnings) != 0 || len(logged) != 0 {
					t.Errorf("unexpected warnings %q", c.Warnings)
				}
				return
			}
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tt.warn) || len(logged) != 1 {
				t.Errorf("warnings %q (logged %d), want %q", c.Warnings, len(logged), tt.warn)
			}
		})
	}
}

func TestResolvePublicIPConfigured(t *testing.T) {
	c := Defaults()
	c.PublicIP = "10.9.9.9"
	c.ResolvePublicIP(NetSources{}) // must not touch the sources
	if c.PublicIP != "10.9.9.9" || len(c.Warnings) != 0 {
		t.Errorf("%q %q", c.PublicIP, c.Warnings)
	}
	c = Defaults()
	c.ResolvePublicIP(NetSources{})
	if c.PublicIP != "127.0.0.1" || len(c.Warnings) != 1 {
		t.Errorf("%q %q", c.PublicIP, c.Warnings)
	}
}

func TestSystemNetSources(t *testing.T) {
	// Smoke test against the real host: always yields a valid IP.
	c := Defaults()
	c.ResolvePublicIP(SystemNetSources())
	if net.ParseIP(c.PublicIP) == nil {
		t.Errorf("PublicIP %q", c.PublicIP)
	}
}

func TestResolveMachineIDInitialCluster(t *testing.T) {
	c := Defaults()
	c.EtcdInitialCluster = "aaaaaaaa=http://a:2380,b=http://b:2380"
	ffs := newFS(map[string]string{SystemMachineIDFile: "aaaaaaaabbbb"})
	if err := c.ResolveMachineID(ffs.readFile, nil, nil); err != nil || c.EtcdName != "aaaaaaaa" {
		t.Fatalf("name %q err %v", c.EtcdName, err)
	}
	c = Defaults()
	c.EtcdInitialCluster = "a=http://a:2380,b=http://b:2380"
	err := c.ResolveMachineID(ffs.readFile, nil, nil)
	wantErr(t, err, `etcd_name: the default member name "aaaaaaaa"`, "set etcd_name")
}
