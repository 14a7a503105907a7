#!/usr/bin/env bash
# Builds the local Incus image "anklume-debian" for the provisioning e2e
# tests (e2e/roles_provision_test.go): a minimal Debian 12 (bookworm) root
# filesystem made with debootstrap from Debian's mirror, with python3 and
# every package the live-tested roles need already installed, because the
# test containers live in an egress: false domain and cannot reach a mirror.
#   - init is sysvinit (it needs no cgroup set-up in the container), and
#     ifupdown with isc-dhcp-client takes the eth0 address over DHCP;
#   - SIGPWR (what `incus stop` sends to a sysvinit container) halts it;
#   - the apt lists of the build are kept, so apt knows the packages.
# Needs root, debootstrap and a running Incus daemon (scripts/incus-test-env.sh).
# Idempotent: the image is rebuilt only when missing or older than
# image_version. Environment: ANKLUME_DEBIAN_MIRROR (default
# http://deb.debian.org/debian), ANKLUME_DEBIAN_ALIAS (default anklume-debian).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

alias_name=${ANKLUME_DEBIAN_ALIAS:-anklume-debian}
mirror=${ANKLUME_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# Bump image_version when the package list or the set-up changes: an older
# image is then replaced.
image_version=pv1

# Packages preinstalled in the image:
#   sysvinit-core ifupdown isc-dhcp-client iproute2 procps  init and DHCP
#   python3 python3-apt                  Ansible modules (apt, package_facts)
#   ca-certificates curl less locales tzdata   base_system's defaults
#   cups cups-client cups-bsd            print_server
#   sudo                                  admin_bootstrap
#   nftables                              firewall_router
include=sysvinit-core,ifupdown,isc-dhcp-client,iproute2,procps,python3,python3-apt
include+=,ca-certificates,curl,less,locales,tzdata,cups,cups-client,cups-bsd,sudo,nftables

if ! command -v debootstrap >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

if incus image info "$alias_name" >/dev/null 2>&1 &&
	! incus image show "$alias_name" | grep -q "release: $image_version"; then
	incus image delete "$alias_name"
fi
if incus image info "$alias_name" >/dev/null 2>&1; then
	echo "image $alias_name ($image_version) is present"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
debootstrap --variant=minbase --include="$include" --exclude=systemd-sysv \
	"$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" >&2
	exit 1
}

# DHCP on eth0 at boot, through ifupdown's networking init script.
cat >"$root/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
# Halt on SIGPWR (incus stop) and run no getty on consoles a container lacks.
sed -i -e '/^[0-9]*:[0-9]*:respawn:\/sbin\/getty/d' -e '/powerwait\|powerfail\|powerokwait/d' "$root/etc/inittab"
echo 'pf::powerwait:/sbin/shutdown -h now' >>"$root/etc/inittab"
echo anklume-debian >"$root/etc/hostname"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
# Keep the image small; the apt lists stay so that apt knows the packages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log

cat >"$work/metadata.yaml" <<META
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: anklume e2e Debian 12 image (debootstrap, sysvinit)
  os: debian
  release: $image_version
META
tar -C "$work" -czf "$work/meta.tar.gz" metadata.yaml
tar -C "$root" --numeric-owner -czf "$work/rootfs.tar.gz" .
incus image import "$work/meta.tar.gz" "$work/rootfs.tar.gz" --alias "$alias_name" >/dev/null
echo "image $alias_name ($image_version) imported"
