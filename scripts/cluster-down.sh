#!/usr/bin/env bash
# cluster-down.sh removes everything scripts/cluster-up.sh created (`make
# cluster-down`): the members' daemons, the instances they ran, their
# namespaces and $ANKLUME_CLUSTER_DIR. Idempotent; it kills only processes
# it can tie to the cluster: the pids in its pid files, what lives in its
# namespaces (dnsmasq, LXC monitors: incusd leaves dnsmasq running on
# shutdown), and the processes of instances whose root file system is below
# $ANKLUME_CLUSTER_DIR (left running when a member was killed). It never
# touches the host's own daemon or its instances.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/cluster-lib.sh
. "$here/cluster-lib.sh"

[ "$(id -u)" = 0 ] || die "run as root"
[ -d "$BASE" ] || exit 0
take_lock

# 1. The cgroups of the cluster's instances, named host-wide
# lxc.payload.<project>_<name>, while a member still answers; their empty
# folders are removed at the end.
cgroups=()
for m in "${MEMBERS[@]}"; do
	alive "$BASE/$m/incusd.pid" || continue
	while IFS=, read -r project name; do
		[ -n "$name" ] && cgroups+=("${project}_$name")
	done < <(INCUS_SOCKET="$BASE/$m/unix.socket" timeout 10 incus list --all-projects -f csv -c e,n 2>/dev/null)
	break
done

# 2. The daemons: SIGKILL on the recorded pids. Everything is thrown away,
# so a clean shutdown buys nothing, and members shutting down together wait
# for each other's database hand-over until they time out (30 s and more);
# the instances they ran are killed below.
for m in "${MEMBERS[@]}"; do
	p="$BASE/$m/incusd.pid"
	alive "$p" && kill -9 "$(cat "$p")" 2>/dev/null
	wait_pid_gone "$p" 5
done

log "kill what is left"
# cgroup_of PID: the lxc.payload/lxc.monitor cgroup name of a process,
# recorded so that its folder can be removed once empty.
cgroup_of() {
	sed -n 's|^[0-9]*:[^:]*:/lxc\.\(payload\|monitor\)\.\([^/]*\).*|\2|p' "/proc/$1/cgroup" 2>/dev/null | head -n 1
}

# 3. Instance processes left behind (their root is below $BASE), in one
# cgroup hierarchy (every process is in each): the processes of an LXC
# payload cgroup belong to one instance, so its first process decides for
# all of them. The host's daemon's instances are never below $BASE.
cgroot=/sys/fs/cgroup
[ -d /sys/fs/cgroup/pids ] && cgroot=/sys/fs/cgroup/pids
for d in "$cgroot"/lxc.payload.*; do
	[ -d "$d" ] || continue
	pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
	first=${pids%%$'\n'*}
	[ -n "$first" ] || continue
	if awk '$5 == "/" { print $4 }' "/proc/$first/mountinfo" 2>/dev/null | grep -q "^$BASE/"; then
		cgroups+=("${d##*/lxc.payload.}")
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null
	fi
done

# 4. Everything in the members' and the switch's network namespaces (LXC
# monitors, dnsmasq), the holders included.
for h in "$BASE"/ns/*/pid; do
	for pid in $(netns_procs "$h"); do
		cgroups+=("$(cgroup_of "$pid")")
		kill -9 "$pid" 2>/dev/null
	done
done
sleep 1

# 5. Empty cgroup folders of the cluster's instances (rmdir removes only
# empty ones, bottom up).
for cg in "${cgroups[@]}"; do
	[ -n "$cg" ] || continue
	for d in /sys/fs/cgroup/*/lxc.payload."$cg" /sys/fs/cgroup/*/lxc.monitor."$cg" \
		/sys/fs/cgroup/lxc.payload."$cg" /sys/fs/cgroup/lxc.monitor."$cg"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
done

# 6. The files; the mounts incusd made live in the members' mount
# namespaces, gone with their last process.
if grep -q " $BASE/" /proc/self/mountinfo; then
	die "mounts still present below $BASE in this namespace; not deleting it"
fi
rm -rf --one-file-system "$BASE"
rm -f "$BASE.lock"
log "down"
