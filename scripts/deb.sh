#!/bin/bash
# deb.sh OUTDIR VERSION: make deb's worker.  Copies the tracked sources
# (and new files not yet committed, but nothing ignored) to
# OUTDIR/machvm-VERSION and runs dpkg-buildpackage there (binary packages,
# unsigned), so the .debs, .buildinfo and .changes land in OUTDIR, not
# next to the source tree.  Needs debhelper and dh-dkms (scripts/deps.sh).
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
cd "$OUT/machvm-$VER"
DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b > "$OUT/build.log" 2>&1 ||
	{ tail -n 40 "$OUT/build.log"; echo "deb: dpkg-buildpackage failed ($OUT/build.log)" >&2; exit 1; }
cd "$OUT"
ls -1 "$OUT"/*.deb
