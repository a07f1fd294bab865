#!/bin/sh
# Start or stop the 5-machine fleet cluster of docker-compose.yml.
#
#   deploy/docker/cluster.sh up         build static fleetd/fleetctl, the image FROM scratch,
#                                       make the cluster token if missing, then start
#   deploy/docker/cluster.sh down       stop and remove the machines and their network
#                                       (the cluster token file stays: reused by the next up)
#   deploy/docker/cluster.sh image      only build the image
#   deploy/docker/cluster.sh token [mN] print machine mN's admin API token (default m1), for
#                                       fleetctl --endpoint http://IP:49153 --token ... on this host
#   deploy/docker/cluster.sh env [mN]   print FLEETCTL_ENDPOINT and FLEETCTL_TOKEN lines for
#                                       machine mN (default m1): eval "$(cluster.sh env)"
#   deploy/docker/cluster.sh exec mN CMD  run CMD in machine mN (-T added without a terminal), e.g.
#                                       cluster.sh exec m1 fleetctl list-machines
#   deploy/docker/cluster.sh ARGS       any other docker compose command (ps, logs m2, ...)
#
# The cluster token (deploy/docker/cluster-token, mode 0600, not committed) is
# etcd's root password and the seed of the certificates of etcd's https URLs;
# every machine mounts it read-only. Set FLEET_CLUSTER_TOKEN_PATH to use
# another file. Inside a machine, fleetctl talks to fleetd over its unix
# socket and needs no token.
#
# Needs go, docker with a compose (the `docker compose` plugin or docker-compose),
# and a static busybox (Debian: apt-get install busybox-static). No registry is used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${FLEET_IMAGE:=fleetd:local}"
: "${FLEET_CLUSTER_TOKEN_PATH:=$here/cluster-token}"
: "${FLEET_SUBNET:=172.28.50}"
export FLEET_IMAGE FLEET_CLUSTER_TOKEN_PATH FLEET_SUBNET

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

# token_file makes the cluster token file unless it exists. Without it,
# Docker would mount an empty directory in its place.
token_file() {
	f=$FLEET_CLUSTER_TOKEN_PATH
	if [ -d "$f" ]; then
		echo "cluster.sh: $f is a directory (left by a docker run without the file?): remove it" >&2
		exit 1
	fi
	if [ ! -s "$f" ]; then
		(umask 077 && head -c 32 /dev/urandom | base64 >"$f")
		echo "cluster.sh: wrote a new cluster token to $f"
	fi
	chmod 600 "$f"
}

machine() {
	case "${1:-m1}" in
	m[1-5]) echo "${1:-m1}" ;;
	*)
		echo "cluster.sh: no machine ${1:-} (m1 ... m5)" >&2
		exit 2
		;;
	esac
}

# admin_token prints machine $1's admin API token.
admin_token() {
	t=$(compose exec -T "$1" cat /var/lib/fleet/admin-token | tr -d '\r\n')
	if [ -z "$t" ]; then
		echo "cluster.sh: $1 has no admin token yet (is it running? cluster.sh logs $1)" >&2
		exit 1
	fi
	echo "$t"
}

case "${1:-up}" in
up)
	image
	token_file
	compose up -d
	echo "fleet is starting:"
	echo "  $0 exec m1 fleetctl list-machines"
	echo "  fleetctl --endpoint http://$FLEET_SUBNET.11:49153 --token \"\$($0 token)\" list-machines"
	;;
down)
	compose down -v --remove-orphans
	;;
image)
	image
	;;
token)
	m=$(machine "${2:-m1}")
	admin_token "$m"
	;;
env)
	m=$(machine "${2:-m1}")
	tok=$(admin_token "$m")
	echo "export FLEETCTL_ENDPOINT=http://$FLEET_SUBNET.1${m#m}:49153"
	echo "export FLEETCTL_TOKEN=$tok"
	;;
exec)
	# Without a terminal (scripts, CI), docker compose exec needs -T.
	shift
	if [ "${1:-}" != -T ] && { [ ! -t 0 ] || [ ! -t 1 ]; }; then
		compose exec -T "$@"
	else
		compose exec "$@"
	fi
	;;
*)
	compose "$@"
	;;
esac
