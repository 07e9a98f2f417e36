#!/bin/bash
# dkms.sh install|uninstall SRCDIR VERSION: make dkms-install's worker.
#   install    the module's sources (kmod/: *.c, *.h, Kbuild, compat/
#              probes and script, uapi/) and build/dkms.conf to
#              $DESTDIR$SRCDIR; without DESTDIR then "dkms add" (a kernel
#              then builds it with "dkms install machvm/VERSION", and
#              AUTOINSTALL rebuilds it for every new kernel).
#   uninstall  without DESTDIR "dkms remove machvm/VERSION --all" first;
#              then the sources.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
what=$1 src=${DESTDIR:-}$2 ver=$3
case $what in
install)
	rm -rf "$src"
	mkdir -p "$src"
	(cd kmod && find . \( -name '*.c' -o -name '*.h' -o -name Kbuild \
		-o -name '*.sh' \) ! -name '*.mod.c' ! -name compat-generated.h \
		! -path './.*' -print0) |
	while IFS= read -r -d '' f; do
		install -D -m 644 "kmod/$f" "$src/$f"
	done
	install -m 644 build/dkms.conf "$src/dkms.conf"
	echo "dkms-install: sources in $src"
	if [ -z "${DESTDIR:-}" ]; then
		command -v dkms > /dev/null ||
			{ echo "dkms-install: dkms is not installed (apt install dkms)" >&2; exit 1; }
		dkms status -m machvm -v "$ver" | grep -q . || dkms add -m machvm -v "$ver"
		echo "dkms-install: now: sudo dkms install machvm/$ver"
	fi
	;;
uninstall)
	if [ -z "${DESTDIR:-}" ] && command -v dkms > /dev/null &&
	   dkms status -m machvm -v "$ver" | grep -q .; then
		dkms remove -m machvm -v "$ver" --all
	fi
	rm -rf "$src"
	echo "dkms-uninstall: removed $src"
	;;
*)
	echo "dkms.sh: install or uninstall" >&2
	exit 2
	;;
esac
