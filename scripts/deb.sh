#!/bin/bash
# deb.sh OUTDIR VERSION: make deb's worker.  Copies the tracked sources
# (and new files not yet committed, but nothing ignored) to
# OUTDIR/machvm-VERSION and runs dpkg-buildpackage there (binary packages,
# unsigned), so the .debs, .buildinfo and .changes land in OUTDIR, not
# next to the source tree.  Needs debhelper and dh-dkms (scripts/deps.sh).
# DEB_REUSE_BUILD=1 (make check) also copies the tree's compiled objects,
# libraries, programs and man pages (times kept, so make finds them up to
# date) and builds without "debian/rules clean": the same packages minus
# Debian's hardening flags, in a fraction of the time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1 VER=$2
cd "$ROOT"
deb_ver=$(dpkg-parsechangelog -S Version -l debian/changelog)
[ "${deb_ver%-*}" = "$VER" ] || {
	echo "deb: debian/changelog says $deb_ver, kmod/version.h $VER: add a changelog entry (dch -v $VER-1)" >&2
	exit 1
}
rm -rf "$OUT"
mkdir -p "$OUT/machvm-$VER"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	cpio -0 -pdm --quiet "$OUT/machvm-$VER"
nc=
if [ "${DEB_REUSE_BUILD:-}" = 1 ]; then
	mkdir -p "$OUT/machvm-$VER/build"
	for d in obj lib bin man; do
		[ -d "$ROOT/build/$d" ] && cp -a "$ROOT/build/$d" "$OUT/machvm-$VER/build/"
	done
	nc=-nc
fi
cd "$OUT/machvm-$VER"
DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b $nc > "$OUT/build.log" 2>&1 ||
	{ tail -n 40 "$OUT/build.log"; echo "deb: dpkg-buildpackage failed ($OUT/build.log)" >&2; exit 1; }
cd "$OUT"
ls -1 "$OUT"/*.deb
