#!/usr/bin/env bash
# Sets up a local Incus daemon for the e2e tests on a Debian 12 host without
# systemd and without network access beyond Debian's mirrors:
#   - installs Incus 6.0 LTS from bookworm-backports and busybox-static;
#   - starts incusd in the background and waits for it;
#   - creates the storage pool "default" (dir driver) when missing;
#   - builds and imports a local busybox image, alias "anklume-test", whose
#     init runs udhcpc so a container takes its reserved DHCP address.
# The image's init exits on SIGPWR, so a normal (non-forced) stop works.
# Idempotent: every step is skipped when already done. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! command -v incus >/dev/null 2>&1 || ! dpkg -s busybox-static >/dev/null 2>&1; then
	if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/backports.list
	fi
	apt-get update -qq
	apt-get install -y -qq -t bookworm-backports incus >/dev/null
	apt-get install -y -qq busybox-static >/dev/null
fi

# start_incusd runs the daemon with no descriptor above 2: started under
# `flock /tmp/anklume-live.lock …`, it would otherwise inherit the lock's
# descriptor and hold the live lock for as long as it runs.
start_incusd() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
	exec nohup /usr/libexec/incus/incusd --group root >/var/log/incus/incusd.out 2>&1
}

if ! incus info >/dev/null 2>&1; then
	mkdir -p /var/log/incus
	start_incusd &
	incus admin waitready --timeout 60
fi

if ! incus storage show default >/dev/null 2>&1; then
	incus storage create default dir
fi

# Bump image_version when the image changes: an older image is replaced.
image_version=v2
if incus image info anklume-test >/dev/null 2>&1 &&
	! incus image show anklume-test | grep -q "release: $image_version"; then
	incus image delete anklume-test
fi
if ! incus image info anklume-test >/dev/null 2>&1; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	root="$work/rootfs"
	mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,usr/bin,usr/sbin,var/run,usr/share/udhcpc}
	cp /bin/busybox "$root/bin/busybox"
	for app in $("$root/bin/busybox" --list); do
		[ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
	done
	cat >"$root/usr/share/udhcpc/default.script" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
	;;
esac
exit 0
SCRIPT
	chmod 0755 "$root/usr/share/udhcpc/default.script"
	cat >"$root/sbin/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
hostname -F /etc/hostname 2>/dev/null
ip link set lo up
ip link set eth0 up 2>/dev/null
udhcpc -i eth0 -b -s /usr/share/udhcpc/default.script -q >/dev/null 2>&1 &
exec sh -c 'trap "exit 0" TERM INT PWR; while :; do sleep 3600 & wait $!; done'
INIT
	chmod 0755 "$root/sbin/init"
	echo anklume-test >"$root/etc/hostname"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	cat >"$work/metadata.yaml" <<META
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: anklume e2e test image (busybox)
  os: busybox
  release: $image_version
META
	tar -C "$work" -czf "$work/meta.tar.gz" metadata.yaml
	tar -C "$root" -czf "$work/rootfs.tar.gz" .
	incus image import "$work/meta.tar.gz" "$work/rootfs.tar.gz" --alias anklume-test >/dev/null
fi
echo "incus ready: $(incus version | tr '\n' ' ')"
