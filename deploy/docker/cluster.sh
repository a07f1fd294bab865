#!/bin/sh
# Start or stop the 5-machine fleet cluster of docker-compose.yml.
#
#   deploy/docker/cluster.sh up      build static fleetd/fleetctl, the image FROM scratch, then start
#   deploy/docker/cluster.sh down    stop and remove the machines and their network
#   deploy/docker/cluster.sh image   only build the image
#   deploy/docker/cluster.sh ARGS    any other docker compose command (ps, logs m2, exec m1 fleetctl ...)
#
# Needs go, docker with a compose (the `docker compose` plugin or docker-compose),
# and a static busybox (Debian: apt-get install busybox-static). No registry is used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${FLEET_IMAGE:=fleetd:local}"
export FLEET_IMAGE

if docker compose version >/dev/null 2>&1; then
	compose() { docker compose -f "$here/docker-compose.yml" "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
	compose() { docker-compose -f "$here/docker-compose.yml" "$@"; }
else
	echo "cluster.sh: neither 'docker compose' nor docker-compose is installed" >&2
	exit 1
fi

image() {
	busybox=${BUSYBOX:-/bin/busybox}
	if [ ! -x "$busybox" ]; then
		echo "cluster.sh: no static busybox at $busybox (apt-get install busybox-static, or set BUSYBOX)" >&2
		exit 1
	fi
	mkdir -p "$here/bin"
	(cd "$root" && CGO_ENABLED=0 go build -o "$here/bin/" ./cmd/fleetd ./cmd/fleet-shim ./cmd/fleetctl)
	cp "$busybox" "$here/bin/busybox"
	docker build -q -t "$FLEET_IMAGE" "$here"
}

case "${1:-up}" in
up)
	image
	compose up -d
	echo "fleet is starting: $(basename "$0") exec m1 fleetctl list-machines"
	;;
down)
	compose down -v --remove-orphans
	;;
image)
	image
	;;
*)
	compose "$@"
	;;
esac
