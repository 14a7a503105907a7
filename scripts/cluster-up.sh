#!/usr/bin/env bash
# cluster-up.sh brings up a real 3-member Incus cluster on this machine for
# anklume's cluster tests (`make cluster-up`), the way Incus's own test suite
# does (test/includes/clustering.sh in the Incus sources): one incusd per
# member, each with its own INCUS_DIR in its own network and mount namespace,
# joined with tokens.
#
#   members        m1 (bootstrap), m2, m3; addresses ${UNDERLAY}.11-13 on a
#                  bridge in a namespace of its own (see cluster-lib.sh)
#   cluster group  lab = m2, m3 (every member also stays in "default")
#   storage pool   default (dir) on every member; the default profile's root
#   image          the busybox test image, alias anklume-test, in the default
#                  project: projects with features.images=false (anklume's)
#                  launch it on any member, which copies it from the one
#                  holding it on first use
#
# On stdout it prints ONLY the shell lines that point the incus client and
# anklume at the cluster, so that
#     eval "$(scripts/cluster-up.sh)"       (or: eval "$(make -s cluster-up)")
# makes the current shell talk to member m1; progress goes to stderr.
#
# Idempotent: re-running only starts what is missing (a second run on an up
# cluster takes about a second). It never touches the host's own daemon
# (/var/lib/incus), adds no interface, address, route or NAT rule to the
# host's network namespace, and closes every inherited descriptor before
# starting a long-lived process. Run as root. Remove it all with
# scripts/cluster-down.sh.
#
# Instance cgroups are named lxc.payload.<project>_<instance> host-wide: the
# projects and instances created on the cluster must not share names with
# those of the host's daemon (anklume's cluster tests use the prefix "cl").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/cluster-lib.sh
. "$here/cluster-lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, incusd)"
for tool in incus unshare nsenter ip flock "$INCUSD"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/incus-test-env.sh installs Incus)"
done
take_lock
mkdir -p "$BASE/ns"

# ---- 1. the switch namespace and its bridge --------------------------------
sw="$BASE/ns/sw"
if ! alive "$sw/pid"; then
	log "create the switch namespace"
	mkdir -p "$sw"
	(
		close_fds
		exec unshare -n sleep infinity </dev/null >/dev/null 2>&1
	) &
	echo $! >"$sw/pid"
	sleep 0.2
	nsenter -n -t "$(cat "$sw/pid")" sh -ec '
		ip link set lo up
		ip link add br0 type bridge
		ip link set br0 up'
fi
swpid=$(cat "$sw/pid")

# ---- 2. one network + mount namespace per member ---------------------------
ensure_ns() {
	local m=$1 i d="$BASE/ns/$1" pid
	i=$(member_index "$m")
	alive "$d/pid" && return 0
	# A daemon left from an earlier namespace must go first.
	if alive "$BASE/$m/incusd.pid"; then
		kill "$(cat "$BASE/$m/incusd.pid")" 2>/dev/null || true
		wait_pid_gone "$BASE/$m/incusd.pid" 20 || kill -9 "$(cat "$BASE/$m/incusd.pid")" 2>/dev/null || true
	fi
	log "create the namespaces of $m"
	mkdir -p "$d/oldsys"
	# A fresh sysfs shows the namespace's own interfaces (incusd reads
	# /sys/class/net); the host's cgroup tree is moved into it so that
	# LXC finds its controllers.
	(
		close_fds
		exec unshare -m -n --propagation private sh -ec '
			d=$1
			mount --move /sys "$d/oldsys"
			mount -t sysfs sysfs /sys
			mount --move "$d/oldsys/fs/cgroup" /sys/fs/cgroup
			umount -l "$d/oldsys"
			: >"$d/ready"
			exec sleep infinity' sh "$d" </dev/null >"$d/setup.log" 2>&1
	) &
	pid=$!
	echo "$pid" >"$d/pid"
	for _ in $(seq 50); do
		[ -e "$d/ready" ] && break
		alive "$d/pid" || die "setting up the namespaces of $m failed: $(cat "$d/setup.log")"
		sleep 0.1
	done
	rm -f "$d/ready"
	ip link add eth0 netns "$pid" type veth peer name "$m" netns "$swpid"
	nsenter -n -t "$swpid" sh -ec "ip link set $m master br0; ip link set $m up"
	nsenter -n -t "$pid" sh -ec "
		ip link set lo up
		ip link set eth0 up
		ip addr add ${UNDERLAY}.1$i/24 dev eth0"
	# Filtering inside a bridge (anklume's ruleset) needs bridge netfilter
	# in the member's namespace, where the setting is per namespace.
	nsenter -n -t "$pid" sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true
}
for m in "${MEMBERS[@]}"; do ensure_ns "$m"; done

# ---- 3. one incusd per member ----------------------------------------------
for m in "${MEMBERS[@]}"; do start_daemon "$m"; done

# ---- 4. bootstrap m1, join m2 and m3 ---------------------------------------
if [ ! -f "$BASE/m1/.clustered" ]; then
	log "bootstrap the cluster on m1"
	inc m1 admin init --preseed <<PRESEED
config:
  core.https_address: ${UNDERLAY}.11:8443
  images.auto_update_interval: 0
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root: {path: /, pool: default, type: disk}
cluster:
  server_name: m1
  enabled: true
PRESEED
	touch "$BASE/m1/.clustered"
fi
for m in "${MEMBERS[@]:1}"; do
	[ -f "$BASE/$m/.clustered" ] && continue
	i=$(member_index "$m")
	log "join $m"
	inc m1 cluster revoke-token "$m" >/dev/null 2>&1 || true
	token=$(inc m1 cluster add "$m" --quiet)
	preseed="cluster:
  enabled: true
  server_name: $m
  server_address: ${UNDERLAY}.1$i:8443
  cluster_address: ${UNDERLAY}.11:8443
  cluster_token: $token
  cluster_certificate: |
$(sed 's/^/    /' "$BASE/m1/cluster.crt")
  member_config:
  - {entity: storage-pool, name: default, key: source, value: \"\"}"
	# The joining client fetches the cluster's certificate over HTTPS
	# itself: run it inside the member's network namespace, where the
	# underlay is. Right after the bootstrap m1 may still serve its old
	# certificate: retry.
	for try in 1 2 3 4 5; do
		if printf '%s\n' "$preseed" | INCUS_SOCKET="$BASE/$m/unix.socket" nsenter -n -t "$(cat "$BASE/ns/$m/pid")" \
			timeout 120 incus admin init --preseed >&2; then
			break
		fi
		[ "$try" = 5 ] && die "$m could not join the cluster"
		sleep 2
	done
	touch "$BASE/$m/.clustered"
done
for m in "${MEMBERS[@]}"; do
	wait_status "$m" ONLINE 60 || die "$m is not ONLINE: $(inc m1 cluster list -f csv -c n,s,m | tr '\n' ' ')"
done
# A stopped member is seen offline after this many seconds without a
# heartbeat (Incus's default is 20).
[ "$(inc m1 config get cluster.offline_threshold)" = 11 ] || inc m1 config set cluster.offline_threshold 11

# ---- 5. the cluster group lab = m2, m3 ------------------------------------
inc m1 cluster group show lab >/dev/null 2>&1 || inc m1 cluster group create lab >/dev/null
for m in m2 m3; do
	inc m1 cluster group show lab | grep -qx -- "- $m" || inc m1 cluster group assign "$m" default,lab >/dev/null
done

# ---- 6. the busybox test image ---------------------------------------------
import_test_image m1

log "up: $(inc m1 cluster list -f csv -c n,s | tr '\n' ' ')"
echo "export INCUS_SOCKET=$BASE/m1/unix.socket"
