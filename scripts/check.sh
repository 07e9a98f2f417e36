#!/bin/bash
# check.sh: everything `make check` runs, in order, with one summary.
#   1. build (module W=1 for every stock kernel, all user space)
#   2. lint (checkpatch --strict, sparse, clang-format), in the background
#      while 3. runs: host tests, C++ unit tests and the VM harness's own test
#   4. every Kselftest binary in the VM, on each stock kernel
#   5. the pair tests (tests/pair) on two guests at once, on each kernel
#   6. installing (tests/install/check.sh): make install/uninstall, a pager
#      built with pkg-config, dkms build for each kernel, make deb and
#      lintian; then one VM boot of the DKMS-built module
# (Running that boot beside the harness self-test, with lint, was tried:
# three at once on two CPUs took longer than one after the other.)
# Last line: "N passed, N failed[, N skipped]"; exit status 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
cd "$ROOT"
mkdir -p "$BUILD/check"
rm -f "$BUILD"/check/*.counts
P=0 F=0 S=0
summary=()
t_stage=$SECONDS
add() {	# add STAGE COUNTS_FILE; the stage's time is since the last add
	local p=0 f=1 s=0
	if [ -s "$2" ]; then read -r p f s < "$2"; fi
	P=$((P + p)) F=$((F + f)) S=$((S + s))
	summary+=("$(printf '%-28s %4d passed, %d failed, %d skipped %5ds' \
		"$1" "$p" "$f" "$s" $((SECONDS - t_stage)))")
	t_stage=$SECONDS
}

echo "== build"
if make -s -j"$(nproc)" user module >"$BUILD/check/build.log" 2>&1; then
	echo "1 0 0" > "$BUILD/check/build.counts"
else
	cat "$BUILD/check/build.log"
	echo "0 1 0" > "$BUILD/check/build.counts"
fi
add build "$BUILD/check/build.counts"

# Lint runs alongside the host tests: the harness self-test's VM spends
# most of its time waiting on timeouts, with CPU to spare.
echo "== lint (alongside the host tests; its report follows them)"
bash scripts/lint.sh "$BUILD/check/lint.counts" > "$BUILD/check/lint.log" 2>&1 &
lint_pid=$!

echo "== host unit tests"
up=0 uf=0
for t in "$BUILD"/tests/unit/*_test; do
	[ -x "$t" ] || continue
	if "$t" > "$BUILD/check/$(basename "$t").log" 2>&1; then
		up=$((up + 1)); echo "  PASS $(basename "$t")"
	else
		uf=$((uf + 1)); echo "  FAIL $(basename "$t")"
		tail -n 30 "$BUILD/check/$(basename "$t").log"
	fi
done
echo "$up $uf 0" > "$BUILD/check/unit.counts"
add "host unit" "$BUILD/check/unit.counts"

echo "== VM harness self-test"
newest=$(tail -n 1 "$BUILD/kernels.list")
python3 tests/harness/run_test.py "$BUILD" "$newest" \
	"$BUILD/check/harness.counts" > "$BUILD/check/harness.log" 2>&1
tail -n 3 "$BUILD/check/harness.log"
add "harness self-test" "$BUILD/check/harness.counts"

echo "== lint"
wait "$lint_pid"
cat "$BUILD/check/lint.log"
add "lint (with the host tests)" "$BUILD/check/lint.counts"

# vm_stage MODE WHAT COUNTS: scripts/vm.sh MODE on every kernel, each a
# stage whose counts are build/vm/<rel>/COUNTS.
vm_stage() {
	local rel
	while read -r rel; do
		echo "== VM $2 on $rel"
		rm -f "$BUILD/vm/$rel/$3"
		bash scripts/vm.sh "$1" "$rel"
		add "VM $2 $rel" "$BUILD/vm/$rel/$3"
	done < "$BUILD/kernels.list"
}
vm_stage check tests counts
vm_stage pair "pair tests" pair.counts

echo "== install: make install/uninstall, pkg-config, dkms, deb, lintian"
bash tests/install/check.sh host "$BUILD/check/install.counts"
add "install, dkms, deb" "$BUILD/check/install.counts"

echo "== VM install: the DKMS-built module on $(head -n 1 "$BUILD/kernels.list")"
bash tests/install/check.sh vm "$BUILD/check/install-vm.counts"
add "VM install (DKMS module)" "$BUILD/check/install-vm.counts"

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "total $((SECONDS / 60)) min $((SECONDS % 60)) s"
line="$P passed, $F failed"
[ "$S" -gt 0 ] && line="$line, $S skipped"
echo "$line"
[ "$F" -eq 0 ]
