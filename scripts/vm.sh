#!/bin/bash
# vm.sh MODE [KERNEL]: build the module and initramfs for a stock kernel and
# boot it under QEMU in MODE (check, demo, bench, shell).  KERNEL is a
# substring of a release in build/kernels.list (default: every kernel for
# check, the newest for the others).  Extra run.py options: $RUN_ARGS.
# Every boot gets two fresh sparse disks in its out dir (see tests/vm/init):
# disk.img (ext4, made here, mounted at /mnt/disk) and swap.img (raw, for a
# swap partition).  Their sizes: $MVM_DISK_MB (default 2048), $MVM_SWAP_MB
# (default 512).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
MODE=$1
SEL=${2:-}

mapfile -t ALL < "$BUILD/kernels.list"
if [ -n "$SEL" ]; then
	mapfile -t KERNELS < <(printf '%s\n' "${ALL[@]}" | grep -F -- "$SEL")
elif [ "$MODE" = check ] || [ "$MODE" = bench ]; then
	KERNELS=("${ALL[@]}")
else
	KERNELS=("${ALL[-1]}")
fi
[ ${#KERNELS[@]} -gt 0 ] || { echo "vm.sh: no kernel matches '$SEL'" >&2; exit 2; }

rc=0
for rel in "${KERNELS[@]}"; do
	kdir=/usr/src/linux-headers-$rel
	out=$BUILD/vm/${VMTAG:-}$rel
	mkdir -p "$out"
	echo "== $MODE on $rel"
	bash "$ROOT/scripts/build-kmod.sh" "$kdir" "$BUILD/kmod/$rel"
	args=()
	for b in "$BUILD"/bin/*; do
		[ -x "$b" ] && args+=(--bin "$b")
	done
	testdir=${TESTDIR:-$BUILD/tests/vm}
	# Fresh disks for this boot.  Few inodes, and inode tables and journal
	# written now, so the guest's ext4 has no lazy-init work to do.
	rm -f "$out/disk.img" "$out/swap.img"
	truncate -s "${MVM_DISK_MB:-2048}M" "$out/disk.img"
	truncate -s "${MVM_SWAP_MB:-512}M" "$out/swap.img"
	PATH=$PATH:/usr/sbin:/sbin mkfs.ext4 -q -F -L mvm-disk -N 1024 -J size=16 \
		-E lazy_itable_init=0,lazy_journal_init=0 "$out/disk.img"
	memtester=$(PATH=$PATH:/usr/sbin:/sbin command -v memtester) ||
		{ echo "vm.sh: memtester missing (make deps)" >&2; exit 1; }
	bash "$ROOT/tests/vm/mkinitramfs.sh" "$out/initramfs.cpio.gz" \
		"$BUILD/kmod/$rel/machvm.ko" --tests "$testdir" "${args[@]}" \
		--file "$ROOT/tests/vm/demo.sh:demo.sh" \
		--file "$ROOT/tests/vm/bench.sh:bench.sh" \
		--file "$BUILD/lib/libmachvm-preload.so:lib/libmachvm-preload.so" \
		--file "$memtester:usr/bin/memtester" \
		--kmods "$BUILD/kernels/$rel/modules=virtio_pci,virtio_blk,ext4,loop"
	expect=$(cd "$testdir" && ls | sort | paste -sd, -)
	python3 "$ROOT/tests/vm/run.py" --kernel-dir "$BUILD/kernels/$rel" \
		--initrd "$out/initramfs.cpio.gz" --mode "$MODE" --out "$out" \
		--label "$rel" --expect "$expect" --counts "$out/counts" \
		--drive "mvm-disk=$out/disk.img" --drive "mvm-swap=$out/swap.img" \
		${RUN_ARGS:-} || rc=1
	# Benchmarks print "@@JSON NAME" ... "@@END": keep each per kernel.
	if [ "$MODE" = bench ]; then
		rm -rf "$BUILD/bench/$rel"	# only this run's results
		mkdir -p "$BUILD/bench/$rel"
		awk -v dir="$BUILD/bench/$rel" '
			{ sub(/\r$/, "") }
			/^@@JSON / { f = dir "/" $2; printf "" > f; next }
			/^@@END/ { close(f); f = ""; next }
			f != "" { print >> f }' "$out/results.log"
	fi
done
if [ "$MODE" = bench ]; then
	python3 "$ROOT/scripts/merge-bench.py" "$BUILD/bench" "${KERNELS[@]}"
fi
exit $rc
