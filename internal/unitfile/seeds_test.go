package unitfile

// seedUnits are real-world unit files in the style of the project's seed
// tutorials: docker sidekicks with continuations, templates with
// specifiers, legacy keys. They seed FuzzParse and the serialization tests.
var seedUnits = map[string]string{
	"nginx@.service (seed 001)": `[Unit]
Description=Nginx-frontend
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/usr/bin/docker kill nginx
ExecStartPre=-/usr/bin/docker rm nginx
ExecStartPre=/usr/bin/docker pull osones/nginx
ExecStart=/usr/bin/docker run -rm --name nginx -p 80:80 osones/nginx
ExecStop=/usr/bin/docker stop nginx

[X-Fleet]
Conflicts=nginx@*.service
`,
	"kappa-test@.service (seed 004)": kappaTest,
	"web@.service with continuations": `[Unit]
Description=Web server %i
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
EnvironmentFile=/etc/environment
ExecStartPre=-/usr/bin/docker kill web-%i
ExecStartPre=-/usr/bin/docker rm web-%i
ExecStartPre=/usr/bin/docker pull nginx:alpine
ExecStart=/usr/bin/docker run --rm --name web-%i \
  -p 80:80 \
  -e INSTANCE=%i \
  nginx:alpine
ExecStop=/usr/bin/docker stop web-%i

[X-Fleet]
Conflicts=web@*.service
MachineMetadata="region=us-east-1" "disk=ssd"
`,
	"web-discovery@.service sidekick": `[Unit]
Description=Announce web@%i
BindsTo=web@%i.service
After=web@%i.service

[Service]
ExecStart=/bin/sh -c "while true; do \
    etcdctl set /services/web/web%i '{\"host\": \"%H\", \"port\": 80}' --ttl 60; \
    sleep 45; \
  done"
ExecStop=/usr/bin/etcdctl rm /services/web/web%i

[X-Fleet]
MachineOf=web@%i.service
`,
	"db + dbhelper (seed 002)": `[Unit]
Description=dbhelper
Requires=db.service
After=db.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f dbhelper
ExecStart=/usr/bin/docker run --name dbhelper --link db:db busybox \
  /bin/sh -c 'while true; do sleep 3600; done'
ExecStop=/usr/bin/docker stop dbhelper
# stop the helper when the database goes away
Restart=on-failure

[X-Fleet]
X-ConditionMachineOf=db.service
`,
	"global logger with legacy keys": `; fleet global unit
[Unit]
Description=Log shipper

[Service]
ExecStart=/usr/bin/docker run --rm --name logger \
# mount the journal
  -v /var/log/journal:/var/log/journal:ro \
  logspout

[X-Fleet]
Global=true
X-ConditionMachineMetadata=role=logs
`,
	"hello.service (CRLF, BOM)": "\uFEFF[Unit]\r\nDescription=Hello World\r\n\r\n[Service]\r\nExecStart=/bin/bash -c \"while true; do echo \\\"Hello, world\\\"; sleep 1; done\"\r\n\r\n[X-Fleet]\r\nMachineID=3d1219c7\r\n",
	"etcd (seed 000)": `[Unit]
Description=etcd
[Service]
Environment=ETCD_DISCOVERY=https://discovery.etcd.io/ad716088a794a4f6a904e7c4eb1786b0
Environment=ETCD_DATA_DIR=/var/lib/etcd/
Environment=ETCD_NAME=infra0
ExecStart=/usr/local/bin/etcd
[Install]
WantedBy=multi-user.target
`,
}
