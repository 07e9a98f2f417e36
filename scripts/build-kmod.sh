#!/bin/bash
# build-kmod.sh KDIR OUTDIR: build machvm.ko for the kernel headers in KDIR
# in OUTDIR (a tree of links to kmod/'s sources), W=1, warnings as errors.
# Extra arguments go to Kbuild (e.g. C=2 for sparse).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDIR=$1; OUT=$2; shift 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
(cd "$ROOT/kmod" && find . \( -name '*.c' -o -name '*.h' -o -name Kbuild \
	-o -name '*.sh' \) ! -name '*.mod.c' ! -name compat-generated.h) |
while read -r f; do
	mkdir -p "$OUT/$(dirname "$f")"
	ln -sfn "$ROOT/kmod/$f" "$OUT/$f"
done
# Under make -j (its jobserver in MAKEFLAGS: the Makefile's recipe is a
# "+" line) the kernel's make shares those jobs; alone, it takes a job per
# CPU.
case " ${MAKEFLAGS:-} " in
*jobserver*) J= ;;
*) J=-j$(nproc) ;;
esac
# Probe once per kernel: again when a probe changes or KDIR does (with
# the same jobs as the build).
if [ ! -f "$OUT/compat-generated.h" ] ||
   [ "$(cat "$OUT/.kdir" 2>/dev/null)" != "$KDIR" ] ||
   [ -n "$(find "$ROOT/kmod/compat" -newer "$OUT/compat-generated.h")" ]; then
	MVM_PROBE_J=$J sh "$ROOT/kmod/compat/probe.sh" "$KDIR" \
		"$OUT/compat-generated.h"
	echo "$KDIR" > "$OUT/.kdir"
fi
rc=0
make -s $J -C "$KDIR" M="$OUT" W=1 "$@" modules > "$OUT/build.log" 2>&1 || rc=$?
grep -v 'Skipping BTF generation' "$OUT/build.log" || true
exit $rc
