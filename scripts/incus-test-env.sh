#!/usr/bin/env bash
# Sets up a local Incus daemon for the e2e tests on a Debian 12 host without
# systemd and without network access beyond Debian's mirrors:
#   - installs Incus 6.0 LTS from bookworm-backports and busybox-static;
#   - starts incusd in the background and waits for it;
#   - creates the storage pool "default" (dir driver) when missing;
#   - builds (scripts/busybox-image.sh) and imports a local busybox image,
#     alias "anklume-test", whose init runs udhcpc so a container takes its
#     reserved DHCP address and exits on SIGPWR, so a normal stop works.
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

# The image's version is in scripts/busybox-image.sh: an older image is replaced.
here=$(cd "$(dirname "$0")" && pwd)
image_version=$("$here/busybox-image.sh" version)
if incus image info anklume-test >/dev/null 2>&1 &&
	! incus image show anklume-test | grep -q "release: $image_version"; then
	incus image delete anklume-test
fi
if ! incus image info anklume-test >/dev/null 2>&1; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	"$here/busybox-image.sh" build "$work"
	incus image import "$work/meta.tar.gz" "$work/rootfs.tar.gz" --alias anklume-test >/dev/null
fi
echo "incus ready: $(incus version | tr '\n' ' ')"
