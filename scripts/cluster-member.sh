#!/usr/bin/env bash
# cluster-member.sh stop|start MEMBER stops or restarts one member's daemon
# in the test cluster of scripts/cluster-up.sh (`make cluster-member-stop
# M=m3`, `make cluster-member-start M=m3`).
#
# stop: a clean shutdown of the member's incusd (`incus admin shutdown`,
# which stops the instances it runs, as when the machine is shut down), then
# whatever incusd left in the member's network namespace (dnsmasq) is killed
# by pid; it returns once another member sees it OFFLINE (about 15 s).
# start: the daemon again in the same namespaces; it restarts the instances
# that were running, and the script returns once the member is ONLINE.
# Stopping m1 leaves the socket printed by cluster-up dead: point
# INCUS_SOCKET at $ANKLUME_CLUSTER_DIR/m2/unix.socket meanwhile.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/cluster-lib.sh
. "$here/cluster-lib.sh"

usage() {
	echo "usage: $0 stop|start MEMBER (one of ${MEMBERS[*]})" >&2
	exit 2
}
[ $# = 2 ] || usage
action=$1 m=$2
member_known "$m" || usage
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$BASE/m1/.clustered" ] || die "no cluster in $BASE: run scripts/cluster-up.sh first"
take_lock

case "$action" in
stop)
	if alive "$BASE/$m/incusd.pid"; then
		log "stop incusd $m"
		inc "$m" admin shutdown >&2 || true
		if ! wait_pid_gone "$BASE/$m/incusd.pid" 30; then
			log "incusd $m did not stop: SIGKILL"
			kill -9 "$(cat "$BASE/$m/incusd.pid")" 2>/dev/null || true
			wait_pid_gone "$BASE/$m/incusd.pid" 10 || true
		fi
	fi
	holder=$(cat "$BASE/ns/$m/pid" 2>/dev/null || true)
	for pid in $(netns_procs "$BASE/ns/$m/pid"); do
		[ "$pid" = "$holder" ] || kill -9 "$pid" 2>/dev/null || true
	done
	wait_status "$m" OFFLINE 60 || die "$m still not seen OFFLINE after 60 s"
	log "$m is OFFLINE"
	;;
start)
	start_daemon "$m"
	wait_status "$m" ONLINE 60 || die "$m not seen ONLINE after 60 s"
	log "$m is ONLINE"
	;;
*) usage ;;
esac
