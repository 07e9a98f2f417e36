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
KFILES=$(git ls-files 'kmod/*.c' 'kmod/*.h' | grep -v '^kmod/uapi/')
# uapi headers cannot use BIT(); that one check does not apply there.
rc=0
$CP -f $KFILES > "$BUILD/checkpatch.log" 2>&1 || rc=1
$CP --ignore BIT_MACRO -f kmod/uapi/linux/*.h >> "$BUILD/checkpatch.log" 2>&1 || rc=1
grep -E 'ERROR|WARNING|CHECK' "$BUILD/checkpatch.log" | head -40
result checkpatch $rc

# The tests' C (Kselftest programs, libraries and headers) is user space:
# these checks ask for kernel-only things, so they do not apply there.
# scripts/checkpatch-types names the types checkpatch cannot know.
TFILES=$(git ls-files '*.c' '*.h' | grep -v '^kmod/')
TIGNORE=(
	PREFER_KERNEL_TYPES	# u64 & co. do not exist; uint64_t is the user type
	VOLATILE		# volatile is how a test forces the access that faults
	SPLIT_STRING		# TH_LOG messages and shell lines; no printk to grep
	STATIC_CONST_CHAR_ARRAY	# argv/envp for execve() must be char *[]
	CAMELCASE		# _Atomic, PRIu64: the C library's own names
)
rc=0
$CP --typedefsfile scripts/checkpatch-types \
	$(printf -- '--ignore %s ' "${TIGNORE[@]}") -f $TFILES \
	> "$BUILD/checkpatch-tests.log" 2>&1 || rc=1
grep -E 'ERROR|WARNING|CHECK' "$BUILD/checkpatch-tests.log" | head -40
result checkpatch-tests $rc

while read -r rel; do
	out=$BUILD/kmod/sparse-$rel
	rm -rf "$out"
	bash scripts/build-kmod.sh "/usr/src/linux-headers-$rel" "$out" \
		C=2 CHECK="sparse -Wno-decl" > "$BUILD/sparse-$rel.log" 2>&1
	rc=$?
	# Only our own files count; kernel headers are not ours to fix.
	if grep -E "^$out/[^:]*:[0-9]+:[0-9]+: (warning|error)" \
		"$BUILD/sparse-$rel.log"; then
		rc=1
	fi
	result "sparse-$rel" $rc
done < "$BUILD/kernels.list"

UFILES=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null)
rc=0
if [ -n "$UFILES" ]; then
	clang-format --dry-run --Werror $UFILES || rc=1
fi
result clang-format $rc

echo "[lint] $pass passed, $fail failed"
[ -n "${1:-}" ] && echo "$pass $fail 0" > "$1"
[ "$fail" -eq 0 ]
