package config

import (
	"strings"
	"testing"
)

// The examples of docs/config.md load without errors or warnings.
func TestDocExamples(t *testing.T) {
	file := `etcd_name=a
etcd_listen_client=["https://10.0.0.1:2379","http://127.0.0.1:2379"]
etcd_listen_peer=["https://10.0.0.1:2380"]
etcd_initial_cluster=a=https://10.0.0.1:2380,b=https://10.0.0.2:2380,c=https://10.0.0.3:2380
cluster_token_file=/etc/fleet/cluster-token
etcd_initial_cluster_state=new
public_ip=10.0.0.1
api_addr=["10.0.0.1:49153","unix:///var/run/fleet.sock"]
`
	c := mustLoad(t, nil, nil, file)
	if len(c.Warnings) != 0 || c.EtcdName != "a" || len(c.EtcdListenClient) != 2 {
		t.Errorf("%+v", c)
	}
	cl := "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2390,m3=http://127.0.0.1:2400"
	for _, line := range []string{
		"--data-dir /tmp/f1 --machine-id 1111111111111111 --api-addr 127.0.0.1:49153,unix:///tmp/f1/fleet.sock --metadata node=1",
		"--data-dir /tmp/f2 --machine-id 2222222222222222 --etcd-servers http://127.0.0.1:2379 --cluster-token-file /tmp/f1/cluster-token --api-addr 127.0.0.1:49154,unix:///tmp/f2/fleet.sock --metadata node=2",
		"--public-ip 10.0.0.5",
		"--data-dir /tmp/m2 --machine-id m2 --cluster-token-file /tmp/cluster-token --etcd-name m2 --etcd-initial-cluster " + cl +
			" --etcd-listen-client http://127.0.0.1:2389 --etcd-listen-peer http://127.0.0.1:2390 --api-addr 127.0.0.1:49154,unix:///tmp/m2/fleet.sock",
	} {
		c := mustLoad(t, strings.Fields(line), []string{"FLEET_METADATA=role=web,disk=ssd"}, "")
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %q", line, c.Warnings)
		}
	}
}
