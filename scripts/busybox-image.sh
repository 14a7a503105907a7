#!/usr/bin/env bash
# Builds the anklume e2e test image (busybox), shared by the single test
# daemon (scripts/incus-test-env.sh) and the test cluster
# (scripts/cluster-up.sh):
#   busybox-image.sh version     prints the image version (its metadata's
#                                "release"); bump it when the image changes
#   busybox-image.sh build DIR   writes DIR/meta.tar.gz and DIR/rootfs.tar.gz,
#                                ready for `incus image import META ROOTFS`
# The image's init brings eth0 up and runs udhcpc, so a container takes its
# reserved DHCP address; it exits on SIGPWR, so a normal stop works.
# Needs busybox-static (/bin/busybox).
set -euo pipefail

image_version=v2

case "${1:-}" in
version)
	echo "$image_version"
	exit 0
	;;
build)
	[ -n "${2:-}" ] || { echo "usage: $0 build DIR" >&2; exit 2; }
	work=$2
	;;
*)
	echo "usage: $0 version | build DIR" >&2
	exit 2
	;;
esac

root="$work/rootfs"
rm -rf "$root"
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
rm -rf "$root" "$work/metadata.yaml"
