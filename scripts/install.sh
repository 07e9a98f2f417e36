#!/bin/bash
# install.sh user|module|uninstall: make install's worker (mk/install.mk
# passes every directory in the environment).  Every file, link and
# directory a part creates is recorded in its manifest,
# $DESTDIR$DATADIR/machvm/install-manifest.PART (PART: user, or
# module-RELEASE; lines "f|l|d PATH", PATH without DESTDIR).  "uninstall"
# reads them all and removes exactly those: files and links, then the
# directories they created, deepest first, when empty.  Installing a part
# again first removes what its last install recorded (an older version's
# library file, say).  MANIFEST=none records nothing (packaging: the
# package manager keeps the list).
#
#   user    library (shared, static), headers, uapi header, libmachvm.pc,
#           pagers, tools, machvm-run's preload library, man pages, udev
#           rule, systemd units, examples (modules-load.d, unit configs)
#   module  machvm.ko for $KERNELRELEASE via Kbuild's modules_install into
#           /lib/modules/$KERNELRELEASE/updates, then depmod (not with
#           DESTDIR: the package's or image's installer runs it there)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
D=${DESTDIR:-}
MAN_DIR=$DATADIR/machvm
RECORD=1
[ "${MANIFEST:-}" = none ] && RECORD=
# DESTDIR itself is the caller's (made if missing, never recorded).
[ -z "$D" ] || mkdir -p "$D"
NEW=$(mktemp)
trap 'rm -f "$NEW"' EXIT

record() { echo "$1 $2" >> "$NEW"; }

# mkdirs DIR: create DIR and its missing parents, each recorded.
mkdirs() {
	local d=$1 missing=()
	while [ ! -d "$D$d" ] && [ "$d" != / ]; do
		missing=("$d" "${missing[@]}")
		d=$(dirname "$d")
	done
	for d in "${missing[@]}"; do
		mkdir -m 755 "$D$d"
		record d "$d"
	done
}

# inst MODE SRC DST: install one file (DST a full path, without DESTDIR).
inst() {
	mkdirs "$(dirname "$3")"
	install -m "$1" "$2" "$D$3"
	record f "$3"
}

# link TARGET DST
link() {
	mkdirs "$(dirname "$2")"
	ln -sfn "$1" "$D$2"
	record l "$2"
}

# uninstall_manifest FILE: remove what a manifest lists.
uninstall_manifest() {
	local m=$1 kind path
	# Files and links first, then directories deepest first.
	while read -r kind path; do
		case $kind in
		f|l) rm -f "$D$path" ;;
		esac
	done < <(tac "$m")
	while read -r kind path; do
		[ "$kind" = d ] || continue
		rmdir "$D$path" 2>/dev/null ||
			echo "uninstall: kept $D$path (not empty)"
	done < <(grep '^d ' "$m" | sort -u | awk '{ print length($2), $0 }' |
		sort -rn | cut -d' ' -f2-)
}

# depmod_if_live: depmod for the kernel, only on a live system.
depmod_if_live() {
	if [ -z "$D" ]; then
		PATH=$PATH:/usr/sbin:/sbin depmod -a "$KERNELRELEASE"
	else
		echo "install: DESTDIR set, depmod not run (run depmod -a $KERNELRELEASE where it is installed)"
	fi
}

install_user() {
	local f b v=$VERSION
	inst 644 "$BUILD/lib/libmachvm.so.$v" "$LIBDIR/libmachvm.so.$v"
	link "libmachvm.so.$v" "$LIBDIR/libmachvm.so.$SOVERSION"
	link "libmachvm.so.$SOVERSION" "$LIBDIR/libmachvm.so"
	inst 644 "$BUILD/lib/libmachvm.a" "$LIBDIR/libmachvm.a"
	for f in libmachvm/include/machvm/*.hpp; do
		inst 644 "$f" "$INCLUDEDIR/machvm/$(basename "$f")"
	done
	inst 644 "$UAPI_SRC" "$INCLUDEDIR/$UAPI_DST"
	inst 644 "$BUILD/dist/libmachvm.pc" "$PKGCONFIGDIR/libmachvm.pc"
	for b in $INST_BINS; do
		inst 755 "$b" "$BINDIR/$(basename "$b")"
	done
	inst 644 "$BUILD/lib/libmachvm-preload.so" "$PKGLIBDIR/libmachvm-preload.so"
	for f in $MAN_GEN $MAN_SRC; do
		inst 644 "$f" "$MANDIR/man${f##*.}/$(basename "$f")"
	done
	inst 644 dist/60-machvm.rules "$UDEVRULESDIR/60-machvm.rules"
	for f in $UNITS; do
		inst 644 "$f" "$SYSTEMDUNITDIR/$(basename "$f")"
	done
	inst 644 dist/modules-load.d/machvm.conf "$EXAMPLEDIR/modules-load.d/machvm.conf"
	for f in dist/examples/*.conf; do
		inst 644 "$f" "$EXAMPLEDIR/$(basename "$f")"
	done
	if [ -z "$D" ]; then
		command -v ldconfig > /dev/null && ldconfig
		if command -v udevadm > /dev/null && [ -d /run/udev ]; then
			udevadm control --reload || true
		fi
		if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
			systemctl daemon-reload || true
		fi
	fi
}

install_module() {
	local kdir=$MODKDIR out=$BUILD/kmod/$KERNELRELEASE base f
	base=/lib/modules/$KERNELRELEASE/updates
	mkdirs "$base"
	# Kbuild's modules_install: signs (where the kernel tree has the key)
	# and compresses as the kernel's configuration says.  Its own depmod
	# step needs System.map, which header packages lack: ours follows.
	# Header packages carry no signing key: then the module is installed
	# unsigned (DKMS signs with the machine's MOK key where one is set up).
	local nosign=()
	if grep -q '^CONFIG_MODULE_SIG_ALL=y' "$kdir/.config" 2>/dev/null &&
	   [ ! -f "$kdir/certs/signing_key.pem" ]; then
		nosign=(CONFIG_MODULE_SIG_ALL=)
		echo "install: no signing key in $kdir: machvm.ko installed unsigned"
	fi
	make -s -C "$kdir" M="$out" INSTALL_MOD_PATH="$D" INSTALL_MOD_DIR=updates \
		"${nosign[@]}" modules_install 2>&1 |
		grep -v 'missing .System.map\|Skipping BTF' || true
	set -- "$D$base"/machvm.ko*
	[ -e "$1" ] || { echo "install: modules_install left no machvm.ko in $D$base" >&2; exit 1; }
	for f in "$@"; do
		record f "${f#"$D"}"
	done
	echo "install: $(printf '%s ' "$@")"
}

# manifest PART: the manifest of one part ("user", "module-RELEASE").
manifest() { echo "$MAN_DIR/install-manifest.$1"; }

# install_part PART FUNCTION: a fresh install of one part, recorded.
install_part() {
	local m old p
	m=$(manifest "$1")
	: > "$NEW"
	if [ -n "$RECORD" ] && [ -f "$D$m" ]; then
		echo "install: removing the previous $1 install first ($D$m)"
		old=$(mktemp)
		cp "$D$m" "$old"
		uninstall_manifest "$old" > /dev/null
		# Directories it made that stay (other parts' files are in them)
		# are still this part's to remove.
		while read -r _ p; do
			[ -d "$D$p" ] && record d "$p"
		done < <(grep '^d ' "$old")
		rm -f "$old"
	fi
	"$2"
	if [ -n "$RECORD" ]; then
		mkdirs "$(dirname "$m")"
		record f "$m"
		cp "$NEW" "$D$m"
		chmod 644 "$D$m"
		echo "install: $1: $(grep -c '^[fl] ' "$D$m") files, manifest $D$m"
	fi
}

case $1 in
uninstall)
	set -- "$D$MAN_DIR"/install-manifest.*
	[ -f "$1" ] || { echo "uninstall: nothing recorded in $D$MAN_DIR (installed with another PREFIX or DATADIR?)" >&2; exit 1; }
	all=$(mktemp)
	cat "$@" > "$all"
	uninstall_manifest "$all"
	rm -f "$all"
	if [ -z "$D" ]; then
		for rel in $(cat "$@" | sed -n 's|^f /lib/modules/\([^/]*\)/.*machvm\.ko.*|\1|p' | sort -u); do
			KERNELRELEASE=$rel depmod_if_live
		done
	fi
	echo "uninstall: done"
	;;
user)
	install_part user install_user
	;;
module)
	install_part "module-$KERNELRELEASE" install_module
	depmod_if_live
	;;
*)
	echo "install.sh: unknown part $1" >&2
	exit 2
	;;
esac
