#!/bin/bash
# mkinitramfs.sh OUT KO MODE_FILES... : build the test VM's initramfs.
#   OUT        output .cpio.gz
#   KO         the machvm.ko built for the target kernel
#   --tests    DIR: every executable in it goes to /tests (in ORDER order)
#   --bin      FILE: goes to /bin
#   --file     SRC:DST: any other file
# Shared libraries of every ELF are copied along (ldd).
set -euo pipefail
OUT=$1; KO=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
R=$(mktemp -d)
chmod 755 "$R"	# mktemp makes it 0700: other users could run nothing
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,lib,tests,proc,sys,dev,tmp,etc,root}
cp /bin/busybox "$R/bin/busybox"
cp "$HERE/init" "$R/init"
cp "$KO" "$R/lib/machvm.ko"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >> "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "nogroup:x:65534:" >> "$R/etc/group"
elfs=()
: > "$R/tests/ORDER"
while [ $# -gt 0 ]; do
	case $1 in
	--tests)
		for t in $(ls "$2" | sort); do
			[ -f "$2/$t" ] && [ -x "$2/$t" ] || continue
			cp "$2/$t" "$R/tests/$t"
			echo "$t" >> "$R/tests/ORDER"
			elfs+=("$2/$t")
		done
		shift 2 ;;
	--bin)
		cp "$2" "$R/bin/"; elfs+=("$2"); shift 2 ;;
	--file)
		src=${2%%:*}; dst=${2#*:}
		mkdir -p "$R/$(dirname "$dst")"; cp "$src" "$R/$dst"; shift 2 ;;
	*) echo "mkinitramfs: bad argument $1" >&2; exit 2 ;;
	esac
done
for e in "${elfs[@]}"; do
	file -L "$e" 2>/dev/null | grep -q 'dynamically linked' || continue
	ldd "$e" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$R/$(dirname "$lib")"
		cp -Ln "$lib" "$R/$lib" 2>/dev/null || true
	done
done
(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
