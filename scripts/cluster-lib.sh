# shellcheck shell=bash
# Shared by scripts/cluster-up.sh, cluster-member.sh and cluster-down.sh: the
# layout of the test cluster and the helpers that start its parts. Sourced,
# not run.
#
# Layout (everything below $ANKLUME_CLUSTER_DIR, default
# /var/lib/anklume-cluster; keep it short: unix socket paths are limited to
# 108 bytes):
#   ns/sw/pid       the "switch" network namespace: one Linux bridge (br0)
#                   that every member's eth0 is plugged into. It lives in its
#                   own namespace, not the host's: the host gets no interface,
#                   no address and no route, so the host's nftables (loaded
#                   by other tests) never see the cluster's traffic and the
#                   cluster's traffic can never leave the machine.
#   ns/mN/pid       member N's network + mount namespace (holder process):
#                   eth0 = ${UNDERLAY}.1N/24, no default route, no NAT; a
#                   fresh sysfs showing the namespace's interfaces, with the
#                   host's cgroup tree moved in.
#   mN/             member N's INCUS_DIR (database, storage pool "default"
#                   (dir), logs, unix.socket); mN/incusd.pid its daemon.
# The host's own daemon (/var/lib/incus) is never touched.

ANKLUME_CLUSTER_DIR=${ANKLUME_CLUSTER_DIR:-/var/lib/anklume-cluster}
# The client finds a socket through INCUS_SOCKET before INCUS_DIR: a caller's
# INCUS_SOCKET (the line cluster-up prints points at m1) would send every
# command meant for another member to m1. Every client call below names its
# member's socket itself (inc), and incusd gets INCUS_DIR only.
unset INCUS_SOCKET INCUS_DIR
BASE=$ANKLUME_CLUSTER_DIR
MEMBERS=(m1 m2 m3)
# The underlay exists only inside the switch and member namespaces.
UNDERLAY=${ANKLUME_CLUSTER_UNDERLAY:-198.18.116}
INCUSD=${INCUSD:-/usr/libexec/incus/incusd}
IMAGE_ALIAS=anklume-test

t0=${t0:-$(date +%s)}
# log writes progress to stderr: stdout is kept for the export lines.
log() { printf '[cluster %3ss] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# member_index m2 -> 2.
member_index() { echo "${1#m}"; }

member_known() {
	local m
	for m in "${MEMBERS[@]}"; do [ "$m" = "$1" ] && return 0; done
	return 1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# inc MEMBER ARGS...: the incus client on that member's unix socket.
inc() {
	local m=$1
	shift
	INCUS_SOCKET="$BASE/$m/unix.socket" timeout "${INC_TIMEOUT:-120}" incus "$@"
}

# close_fds closes every descriptor above 2 of the current (sub)shell. Long-
# lived processes are started after it: run from a shell holding
# /tmp/anklume-live.lock (flock … go test …), they would otherwise inherit
# the lock's descriptor and hold the live lock for as long as they run.
close_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
}

# take_lock serialises the harness scripts on $BASE.lock (fd 9, closed in
# every long-lived child by close_fds).
take_lock() {
	mkdir -p "$(dirname "$BASE")"
	exec 9>"$BASE.lock"
	flock -w 300 9 || die "another cluster script holds $BASE.lock"
}

# netns_procs PIDFILE: the pids living in the network namespace of the
# process in PIDFILE (the holder itself included).
netns_procs() {
	local ns
	alive "$1" || return 0
	ns=$(readlink "/proc/$(cat "$1")/ns/net") || return 0
	ns=${ns//[/\\[}
	ns=${ns//]/\\]}
	find /proc/[0-9]*/ns/net -maxdepth 0 -lname "$ns" 2>/dev/null | cut -d/ -f3
}

# wait_pid_gone PIDFILE SECONDS.
wait_pid_gone() {
	local i
	for ((i = 0; i < $2 * 4; i++)); do
		alive "$1" || return 0
		sleep 0.25
	done
	return 1
}

# start_daemon MEMBER: starts the member's incusd inside its namespaces
# (when not running) and waits until it answers.
start_daemon() {
	local m=$1 dir="$BASE/$1"
	mkdir -p "$dir"
	chmod 0711 "$dir"
	alive "$BASE/ns/$m/pid" || die "the namespace of $m is gone: run cluster-down then cluster-up"
	if ! alive "$dir/incusd.pid"; then
		log "start incusd $m"
		(
			close_fds
			INCUS_DIR="$dir" exec nsenter -n -m -t "$(cat "$BASE/ns/$m/pid")" \
				"$INCUSD" --group root --logfile "$dir/incusd.log" \
				>"$dir/incusd.out" 2>&1 </dev/null
		) &
		echo $! >"$dir/incusd.pid"
	fi
	inc "$m" admin waitready --timeout=120 >/dev/null ||
		die "incusd $m did not answer within 120 s (see $dir/incusd.log)"
}

# member_status FROM MEMBER: the status of MEMBER (ONLINE, OFFLINE, …) as
# the member FROM sees it.
member_status() {
	INC_TIMEOUT=5 inc "$1" cluster list -f csv -c n,s 2>/dev/null | awk -F, -v m="$2" '$1 == m { print $2 }'
}

# wait_status MEMBER STATUS SECONDS: until a running member other than
# MEMBER (or MEMBER itself when it is the only one running) reports STATUS.
wait_status() {
	local m=$1 want=$2 secs=$3 from="" o i
	for o in "${MEMBERS[@]}"; do
		[ "$o" != "$m" ] && alive "$BASE/$o/incusd.pid" && from=$o && break
	done
	[ -n "$from" ] || from=$m
	for ((i = 0; i < secs; i++)); do
		[ "$(member_status "$from" "$m")" = "$want" ] && return 0
		sleep 1
	done
	return 1
}

# import_test_image MEMBER: imports the local busybox image as IMAGE_ALIAS
# through MEMBER, replacing one of an older release (scripts/busybox-image.sh
# builds it; "$here" is the directory of the scripts).
import_test_image() {
	local m=$1 version work
	version=$("$here/busybox-image.sh" version)
	if inc "$m" image info "$IMAGE_ALIAS" >/dev/null 2>&1 &&
		! inc "$m" image show "$IMAGE_ALIAS" | grep -q "release: $version"; then
		inc "$m" image delete "$IMAGE_ALIAS"
	fi
	if ! inc "$m" image info "$IMAGE_ALIAS" >/dev/null 2>&1; then
		log "import the busybox image $IMAGE_ALIAS"
		work="$BASE/image"
		mkdir -p "$work"
		"$here/busybox-image.sh" build "$work"
		inc "$m" image import "$work/meta.tar.gz" "$work/rootfs.tar.gz" --alias "$IMAGE_ALIAS" >/dev/null
		rm -rf "$work"
	fi
}
