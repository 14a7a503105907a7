#!/usr/bin/env bash
# scale-daemon.sh up | down: a standalone (not clustered) Incus daemon of its
# own for the scale benchmark (`make bench-scale`), so that a lab of 300
# instances and 100 bridges never loads or locks the host's shared daemon.
#
#   up    starts incusd with INCUS_DIR=$ANKLUME_SCALE_DIR/m1 (default
#         /var/lib/anklume-scale) in a network + mount namespace of its own
#         (a fresh sysfs, the host's cgroup tree moved in; no interface, no
#         route, no NAT: its bridges and dnsmasq live in that namespace and
#         reach nothing), with a dir storage pool "default" and the busybox
#         test image as alias anklume-test; prints on stdout only the line
#         that points incus and anklume at it:
#             eval "$(scripts/scale-daemon.sh up)"
#         Idempotent: a second run only starts what is missing.
#   down  removes the daemon, its instances, its namespace and the directory
#         (scripts/cluster-down.sh on the same layout).
#
# The layout is the test cluster's (scripts/cluster-lib.sh) with a single
# member m1 and no underlay. Instance cgroups are named host-wide
# lxc.payload.<project>_<instance>: the benchmark's projects (sk0…sk99) are
# used by nothing on the host's daemon. Run as root, outside the live lock
# (long-lived processes are started with every inherited descriptor closed
# anyway).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export ANKLUME_CLUSTER_DIR=${ANKLUME_SCALE_DIR:-/var/lib/anklume-scale}

case "${1:-}" in
down) exec bash "$here/cluster-down.sh" ;;
up) ;;
*)
	echo "usage: $0 up | down" >&2
	exit 2
	;;
esac

# shellcheck source=scripts/cluster-lib.sh
. "$here/cluster-lib.sh"
MEMBERS=(m1)
[ "$(id -u)" = 0 ] || die "run as root (namespaces, incusd)"
for tool in incus unshare nsenter flock "$INCUSD"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/incus-test-env.sh installs Incus)"
done
take_lock

d="$BASE/ns/m1"
if ! alive "$d/pid"; then
	if alive "$BASE/m1/incusd.pid"; then
		kill "$(cat "$BASE/m1/incusd.pid")" 2>/dev/null || true
		wait_pid_gone "$BASE/m1/incusd.pid" 20 || kill -9 "$(cat "$BASE/m1/incusd.pid")" 2>/dev/null || true
	fi
	log "create the namespaces"
	mkdir -p "$d/oldsys"
	(
		close_fds
		exec unshare -m -n --propagation private sh -ec '
			d=$1
			mount --move /sys "$d/oldsys"
			mount -t sysfs sysfs /sys
			mount --move "$d/oldsys/fs/cgroup" /sys/fs/cgroup
			umount -l "$d/oldsys"
			ip link set lo up
			: >"$d/ready"
			exec sleep infinity' sh "$d" </dev/null >"$d/setup.log" 2>&1
	) &
	echo $! >"$d/pid"
	for _ in $(seq 50); do
		[ -e "$d/ready" ] && break
		alive "$d/pid" || die "setting up the namespaces failed: $(cat "$d/setup.log")"
		sleep 0.1
	done
	rm -f "$d/ready"
fi
start_daemon m1

if [ ! -f "$BASE/m1/.initialised" ]; then
	log "storage pool and default profile"
	inc m1 admin init --preseed <<PRESEED
config:
  images.auto_update_interval: 0
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root: {path: /, pool: default, type: disk}
PRESEED
	touch "$BASE/m1/.initialised"
fi

import_test_image m1
log "up"
echo "export INCUS_SOCKET=$BASE/m1/unix.socket"
