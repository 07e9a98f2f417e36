#!/bin/bash
# Install everything machvm needs from Debian's packages, download the
# stock kernel images the VM tests boot, and extract the Kselftest headers
# and checkpatch.pl from linux-source-6.1.  Idempotent; results are cached
# under $BUILD (default: build/).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
mkdir -p "$BUILD"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS=(build-essential bc kmod flex bison libelf-dev libssl-dev
      linux-headers-amd64 linux-headers-6.12-amd64 linux-source-6.1
      qemu-system-x86 busybox-static cpio gzip xz-utils zstd
      liburing-dev libnl-3-dev libnl-genl-3-dev pkg-config
      sparse clang-format python3 perl file git e2fsprogs
      nlohmann-json3-dev libzstd-dev libhiredis-dev)
PKGS+=(memtester)	# run_test: a real program under machvm-run in the VM
# redis_test (host) and redis_store_test (VM): real servers and a cluster
PKGS+=(redis-server redis-tools)
PKGS+=(sqlite3 xz-utils coreutils)	# tests/vm/programs.sh (make bench)
# Installing: make deb (debhelper, dh-dkms), its check (lintian, dkms,
# man for groff warnings on the man pages).
PKGS+=(dkms dh-dkms debhelper lintian man-db)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
		--no-install-recommends "${PKGS[@]}"
fi

# The two stock Debian 12 kernels: the 6.1 series (linux-headers-amd64) and
# the newest 6.12 (linux-headers-6.12-amd64).  Resolve each meta package to
# its ABI; the image and headers always share it.
abi_of() {
	dpkg-query -W -f='${Depends}' "$1" | tr ',' '\n' |
		sed -n 's/^ *linux-headers-\([^ ]*\)-amd64.*/\1/p' | head -n1
}
: > "$BUILD/kernels.list.new"
for meta in linux-headers-amd64 linux-headers-6.12-amd64; do
	abi=$(abi_of "$meta")
	[ -n "$abi" ] || { echo "deps: cannot resolve $meta" >&2; exit 1; }
	kdir=$BUILD/kernels/$abi-amd64
	if [ ! -f "$kdir/vmlinuz" ]; then
		echo "deps: downloading linux-image-$abi-amd64"
		rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
		(cd "$kdir.tmp" && apt-get download -q "linux-image-$abi-amd64")
		dpkg-deb -x "$kdir.tmp"/linux-image-*.deb "$kdir.tmp/root"
		mkdir -p "$kdir"
		cp "$kdir.tmp/root/boot/vmlinuz-$abi-amd64" "$kdir/vmlinuz.part"
		# Keep the image's module tree: later tests load virtio drivers.
		rm -rf "$kdir/modules"
		mv "$kdir.tmp/root/lib/modules/$abi-amd64" "$kdir/modules"
		rm -rf "$kdir.tmp"
		mv "$kdir/vmlinuz.part" "$kdir/vmlinuz"
	fi
	# The image ships no modules.dep (depmod makes it at install time);
	# the initramfs builder needs it to load virtio_blk, ext4 and loop.
	if [ ! -f "$kdir/modules/modules.dep" ]; then
		echo "deps: depmod for $abi-amd64"
		dm=$(mktemp -d)
		mkdir -p "$dm/lib/modules"
		ln -s "$kdir/modules" "$dm/lib/modules/$abi-amd64"
		PATH=$PATH:/usr/sbin:/sbin depmod -b "$dm" "$abi-amd64"
		rm -rf "$dm"
	fi
	[ -d "/usr/src/linux-headers-$abi-amd64" ] ||
		{ echo "deps: headers for $abi missing" >&2; exit 1; }
	echo "$abi-amd64" >> "$BUILD/kernels.list.new"
done
mv "$BUILD/kernels.list.new" "$BUILD/kernels.list"

# Kselftest headers and checkpatch from linux-source-6.1 (never committed).
KS=$BUILD/linux-source
if [ ! -f "$KS/.done" ]; then
	echo "deps: extracting kselftest headers and checkpatch.pl"
	rm -rf "$KS" && mkdir -p "$KS"
	tar -C "$KS" --strip-components=1 -xf /usr/src/linux-source-6.1.tar.xz \
		--wildcards \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/tools/testing/selftests/kselftest.h' \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch' '*/.clang-format'
	touch "$KS/.done"
fi
echo "deps: ok ($(tr '\n' ' ' < "$BUILD/kernels.list"))"
