#!/bin/bash
# mkinitramfs.sh OUT KO MODE_FILES... : build the test VM's initramfs.
#   OUT        output .cpio.gz
#   KO         the machvm.ko built for the target kernel
#   --tests    DIR: every executable in it goes to /tests (in ORDER order)
#   --bin      FILE: goes to /bin
#   --file     SRC:DST: any other file (an ELF brings its libraries)
#   --kmods    DIR=NAME,NAME...: kernel modules from DIR (a kernel's
#              lib/modules/<release>, with modules.dep) and everything they
#              need, in load order (modprobe --show-depends, softdeps
#              included), decompressed, to /lib/modules.  Built-in ones
#              are skipped.  /lib/modules/ORDER: one line per NAME, the
#              file names it adds in load order; lines are independent
#              (loaded in parallel) except that an empty line, put before a
#              NAME that needs a module of an earlier line, means "wait for
#              every line before".
# Shared libraries of every ELF are copied along (ldd).
set -euo pipefail
OUT=$1; KO=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
R=$(mktemp -d)
chmod 755 "$R"	# mktemp makes it 0700: other users could run nothing
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,lib/modules,tests,proc,sys,dev,tmp,etc,root}
: > "$R/lib/modules/ORDER"
cp /bin/busybox "$R/bin/busybox"
cp "$HERE/init" "$R/init"
cp "$KO" "$R/lib/machvm.ko"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/sh" >> "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "nogroup:x:65534:" >> "$R/etc/group"
elfs=()

# add_kmods DIR NAME,NAME...
add_kmods() {
	local dir=$1 names=$2 base name f ko chain overlap
	[ -f "$dir/modules.dep" ] ||
		{ echo "mkinitramfs: no $dir/modules.dep (make deps)" >&2; exit 1; }
	base=$(mktemp -d)
	mkdir -p "$base/lib/modules"
	ln -s "$(cd "$dir" && pwd)" "$base/lib/modules/k"
	for name in ${names//,/ }; do
		PATH=$PATH:/usr/sbin:/sbin modprobe -C /dev/null -d "$base" -S k \
			--show-depends "$name" > "$base/deps" ||
			{ echo "mkinitramfs: module $name not found" >&2; exit 1; }
		chain= overlap=
		while read -r verb f _; do
			[ "$verb" = insmod ] || continue
			ko=$(basename "$f"); ko=${ko%.xz}; ko=${ko%.zst}; ko=${ko%.gz}
			if [ -e "$R/lib/modules/$ko" ]; then
				overlap=1
				continue
			fi
			case $f in
			*.xz) xz -dc "$f" > "$R/lib/modules/$ko" ;;
			*.zst) zstd -qdc "$f" > "$R/lib/modules/$ko" ;;
			*.gz) gzip -dc "$f" > "$R/lib/modules/$ko" ;;
			*) cp "$f" "$R/lib/modules/$ko" ;;
			esac
			chain="$chain $ko"
		done < "$base/deps"
		[ -z "$overlap" ] || echo >> "$R/lib/modules/ORDER"
		[ -z "$chain" ] || echo "${chain# }" >> "$R/lib/modules/ORDER"
	done
	rm -rf "$base"
}
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
		mkdir -p "$R/$(dirname "$dst")"; cp "$src" "$R/$dst"
		elfs+=("$src"); shift 2 ;;
	--kmods)
		add_kmods "${2%%=*}" "${2#*=}"; shift 2 ;;
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
