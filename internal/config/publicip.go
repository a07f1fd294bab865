package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// RouteFile is the kernel's IPv4 routing table.
const RouteFile = "/proc/net/route"

// NetInterface is a network interface and its addresses.
type NetInterface struct {
	Name  string
	Addrs []net.Addr
}

// NetSources are the host data ResolvePublicIP looks at.
type NetSources struct {
	// ReadFile reads RouteFile.
	ReadFile func(string) ([]byte, error)
	// Interfaces lists the interfaces and their addresses.
	Interfaces func() ([]NetInterface, error)
	// Warnf, if set, receives the fallback warning.
	Warnf func(format string, args ...any)
}

// SystemNetSources reads the real host: /proc/net/route and net.Interfaces.
func SystemNetSources() NetSources {
	return NetSources{
		ReadFile: os.ReadFile,
		Interfaces: func() ([]NetInterface, error) {
			ifs, err := net.Interfaces()
			if err != nil {
				return nil, err
			}
			out := make([]NetInterface, 0, len(ifs))
			for _, ifc := range ifs {
				addrs, err := ifc.Addrs()
				if err != nil {
					continue
				}
				out = append(out, NetInterface{Name: ifc.Name, Addrs: addrs})
			}
			return out, nil
		},
	}
}

// ResolvePublicIP fills in PublicIP unless it was configured: the first
// global-unicast IPv4 address of the interface that carries the default route
// (the one with the lowest metric). Without one it falls back to 127.0.0.1
// and records a warning in Warnings (and calls src.Warnf).
func (c *Config) ResolvePublicIP(src NetSources) {
	if c.PublicIP != "" {
		return
	}
	ip, why := publicIP(src)
	if ip != "" {
		c.PublicIP = ip
		return
	}
	c.PublicIP = "127.0.0.1"
	msg := fmt.Sprintf("public_ip: %s; using 127.0.0.1 (set public_ip to publish another address)", why)
	c.Warnings = append(c.Warnings, msg)
	if src.Warnf != nil {
		src.Warnf("%s", msg)
	}
}

func publicIP(src NetSources) (ip, why string) {
	if src.ReadFile == nil || src.Interfaces == nil {
		return "", "no network information"
	}
	data, err := src.ReadFile(RouteFile)
	if err != nil {
		return "", fmt.Sprintf("cannot read the routing table: %v", err)
	}
	iface, ok := defaultRouteInterface(data)
	if !ok {
		return "", "no default route"
	}
	ifs, err := src.Interfaces()
	if err != nil {
		return "", fmt.Sprintf("cannot list interfaces: %v", err)
	}
	for _, ifc := range ifs {
		if ifc.Name != iface {
			continue
		}
		for _, a := range ifc.Addrs {
			var ip net.IP
			switch a := a.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			}
			if v4 := ip.To4(); v4 != nil && v4.IsGlobalUnicast() {
				return v4.String(), ""
			}
		}
		return "", fmt.Sprintf("default-route interface %s has no global-unicast IPv4 address", iface)
	}
	return "", fmt.Sprintf("default-route interface %s not found", iface)
}

// defaultRouteInterface parses /proc/net/route and returns the interface of
// the up default route (destination and mask 0) with the lowest metric.
func defaultRouteInterface(data []byte) (string, bool) {
	best, bestMetric := "", int64(-1)
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "Iface" {
				continue
			}
		}
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&0x1 == 0 { // RTF_UP
			continue
		}
		metric, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best, best != ""
}
