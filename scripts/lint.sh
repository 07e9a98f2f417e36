#!/bin/bash
# lint.sh [COUNTS]: checkpatch --strict and sparse on the module,
# checkpatch --strict on the tests' C, a clang-format check on the C++.
# Each check is one result; COUNTS gets "passed failed skipped".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
cd "$ROOT"
pass=0 fail=0
result() {
	if [ "$2" -eq 0 ]; then
		echo "  PASS lint/$1"; pass=$((pass + 1))
	else
		echo "  FAIL lint/$1"; fail=$((fail + 1))
	fi
}

CP="perl $BUILD/linux-source/scripts/checkpatch.pl --strict --no-tree --terse
	--show-types --ignore FILE_PATH_CHANGES"

# The checks run at once (each is one process, the machine has more than
# one CPU); their results are printed in order.
lint_kmod() {
	local rc=0 files
	files=$(git ls-files 'kmod/*.c' 'kmod/*.h' | grep -v '^kmod/uapi/')
	# uapi headers cannot use BIT(); that one check does not apply there.
	$CP -f $files > "$BUILD/checkpatch.log" 2>&1 || rc=1
	$CP --ignore BIT_MACRO -f kmod/uapi/linux/*.h >> "$BUILD/checkpatch.log" 2>&1 || rc=1
	return $rc
}

# The tests' C (Kselftest programs, libraries and headers) is user space:
# these checks ask for kernel-only things, so they do not apply there.
# scripts/checkpatch-types names the types checkpatch cannot know.
TIGNORE=(
	PREFER_KERNEL_TYPES	# u64 & co. do not exist; uint64_t is the user type
	VOLATILE		# volatile is how a test forces the access that faults
	SPLIT_STRING		# TH_LOG messages and shell lines; no printk to grep
	STATIC_CONST_CHAR_ARRAY	# argv/envp for execve() must be char *[]
	CAMELCASE		# _Atomic, PRIu64: the C library's own names
)
lint_tests() {
	$CP --typedefsfile scripts/checkpatch-types \
		$(printf -- '--ignore %s ' "${TIGNORE[@]}") \
		-f $(git ls-files '*.c' '*.h' | grep -v '^kmod/') \
		> "$BUILD/checkpatch-tests.log" 2>&1
}

lint_sparse() {	# lint_sparse RELEASE
	local out=$BUILD/kmod/sparse-$1 rc
	rm -rf "$out"
	bash scripts/build-kmod.sh "/usr/src/linux-headers-$1" "$out" \
		C=2 CHECK="sparse -Wno-decl" > "$BUILD/sparse-$1.log" 2>&1
	rc=$?
	# Only our own files count; kernel headers are not ours to fix.  The
	# findings are printed with the result.
	if grep -E "^$out/[^:]*:[0-9]+:[0-9]+: (warning|error)" \
		"$BUILD/sparse-$1.log" > "$BUILD/sparse-$1.found"; then
		rc=1
	fi
	return $rc
}

declare -A job
lint_kmod & job[checkpatch]=$!
lint_tests & job[checkpatch-tests]=$!
mapfile -t rels < "$BUILD/kernels.list"
for rel in "${rels[@]}"; do
	lint_sparse "$rel" & job[sparse-$rel]=$!
done

wait "${job[checkpatch]}"; rc=$?
grep -E 'ERROR|WARNING|CHECK' "$BUILD/checkpatch.log" | head -40
result checkpatch $rc
wait "${job[checkpatch-tests]}"; rc=$?
grep -E 'ERROR|WARNING|CHECK' "$BUILD/checkpatch-tests.log" | head -40
result checkpatch-tests $rc
for rel in "${rels[@]}"; do
	wait "${job[sparse-$rel]}"; rc=$?
	cat "$BUILD/sparse-$rel.found"
	result "sparse-$rel" $rc
done

UFILES=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null)
rc=0
if [ -n "$UFILES" ]; then
	clang-format --dry-run --Werror $UFILES || rc=1
fi
result clang-format $rc

echo "[lint] $pass passed, $fail failed"
[ -n "${1:-}" ] && echo "$pass $fail 0" > "$1"
[ "$fail" -eq 0 ]
