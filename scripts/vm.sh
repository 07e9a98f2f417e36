#!/bin/bash
# vm.sh MODE [KERNEL]: build the module and initramfs for a stock kernel and
# boot it under QEMU in MODE (check, demo, bench, shell, pair, pairbench).
# KERNEL is a substring of a release in build/kernels.list (default: every
# kernel for check, bench, pair and pairbench, the newest for the others).
# Extra run.py options: $RUN_ARGS.  $MVM_KO: the machvm.ko to boot
# instead of the tree's (one KERNEL then); $MVM_EXTRA_FILES: more files for
# the initramfs, "SRC:DST ..." (as mkinitramfs.sh --file).  Every boot gets two fresh sparse disks
# in its out dir (see tests/vm/init): disk.img (ext4, made here, mounted at
# /mnt/disk) and swap.img (raw, for a swap partition).  Their sizes:
# $MVM_DISK_MB (default 2048), $MVM_SWAP_MB (default 512).
#
# pair: two guests of one kernel at once, build/vm/<rel>/pair-a and pair-b
# (each its own initramfs copy, disks, logs), joined by a QEMU socket
# network on a free local port (a listens, b connects), 10.0.2.1 and
# 10.0.2.2/24.  Both run every test of build/tests/pair ($TESTDIR) in the
# same order; the pair fails if either guest does.  Counts of both go to
# build/vm/<rel>/pair.counts.
#
# bench: tests/vm/bench.sh on one guest, then tests/vm/pairbench.sh on a
# pair (as above, guest mode pairbench: both guests run the script at
# once).  Every "@@JSON NAME" ... "@@END" block of the single guest's
# output and of pair guest a's goes to build/bench/<rel>/NAME, and
# scripts/merge-bench.py merges the kernels into build/bench/NAME.
# pairbench: only the pair part (its blocks replace the same names).
#
# soak: tests/soak/soak_test (machvm-soak) alone on one guest per
# kernel for $SOAK_MIN minutes (default 20; $SOAK_SEED replays a seed),
# then machvm-soak --netmem on a pair of that kernel for $SOAK_PAIR_MIN
# minutes (default half of SOAK_MIN, at least 1).  $SOAK_ARGS: more
# machvm-soak options, comma-separated (soak_test's default: --no-memcg;
# --memcg turns the memory cgroup chaos on).  Every guest's
# "# soak|" table is printed here; the run fails on anything the soak or
# run.py finds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
MODE=$1
SEL=${2:-}

mapfile -t ALL < "$BUILD/kernels.list"
if [ -n "$SEL" ]; then
	mapfile -t KERNELS < <(printf '%s\n' "${ALL[@]}" | grep -F -- "$SEL")
elif [ "$MODE" = check ] || [ "$MODE" = bench ] || [ "$MODE" = pair ] ||
     [ "$MODE" = pairbench ] || [ "$MODE" = soak ]; then
	KERNELS=("${ALL[@]}")
else
	KERNELS=("${ALL[-1]}")
fi
[ ${#KERNELS[@]} -gt 0 ] || { echo "vm.sh: no kernel matches '$SEL'" >&2; exit 2; }

# new_disks DIR: fresh disks for one boot.  Few inodes, and inode tables
# and journal written now, so the guest's ext4 has no lazy-init work to do.
new_disks() {
	rm -f "$1/disk.img" "$1/swap.img"
	truncate -s "${MVM_DISK_MB:-2048}M" "$1/disk.img"
	truncate -s "${MVM_SWAP_MB:-512}M" "$1/swap.img"
	PATH=$PATH:/usr/sbin:/sbin mkfs.ext4 -q -F -L mvm-disk -N 1024 -J size=16 \
		-E lazy_itable_init=0,lazy_journal_init=0 "$1/disk.img"
}

# listening PORT: something listens on 127.0.0.1:PORT.  (Not a probe
# connection: QEMU's socket netdev takes the first one as its peer.)
listening() {
	local hex
	hex=$(printf '0100007F:%04X' "$1")
	awk -v a="$hex" '$2 == a && $4 == "0A" { f = 1 } END { exit !f }' \
		/proc/net/tcp
}

# make_initrd REL INITRD TESTDIR KMODS: the initramfs for REL's boots:
# the module, every program of build/bin, the tests of TESTDIR, the guest
# scripts, and the kernel modules KMODS (with what they need).
make_initrd() {
	local rel=$1 initrd=$2 testdir=$3 kmods=$4 memtester b
	local -a bins=()
	for b in "$BUILD"/bin/*; do
		[ -x "$b" ] && bins+=(--bin "$b")
	done
	memtester=$(PATH=$PATH:/usr/sbin:/sbin command -v memtester) ||
		{ echo "vm.sh: memtester missing (make deps)" >&2; exit 1; }
	# tests/vm/programs.sh's programs (GNU sort, not busybox's)
	for b in sqlite3 xz sort; do
		[ -x "/usr/bin/$b" ] ||
			{ echo "vm.sh: /usr/bin/$b missing (make deps)" >&2; exit 1; }
		bins+=(--file "/usr/bin/$b:usr/bin/$b")
	done
	# redis_store_test: a real Redis server in the guest (the ELF is
	# redis-check-rdb behind a symlink; named redis-server it serves)
	for b in redis-server redis-cli; do
		[ -x "/usr/bin/$b" ] ||
			{ echo "vm.sh: /usr/bin/$b missing (make deps)" >&2; exit 1; }
		bins+=(--file "/usr/bin/$b:usr/bin/$b")
	done
	mkdir -p "$(dirname "$initrd")"
	local f
	for f in ${MVM_EXTRA_FILES:-}; do
		bins+=(--file "$f")
	done
	bash "$ROOT/tests/vm/mkinitramfs.sh" "$initrd" \
		"${MVM_KO:-$BUILD/kmod/$rel/machvm.ko}" --tests "$testdir" "${bins[@]}" \
		--file "$ROOT/tests/vm/demo.sh:demo.sh" \
		--file "$ROOT/tests/vm/bench.sh:bench.sh" \
		--file "$ROOT/tests/vm/programs.sh:programs.sh" \
		--file "$ROOT/tests/vm/pairbench.sh:pairbench.sh" \
		--file "$BUILD/lib/libmachvm-preload.so:lib/libmachvm-preload.so" \
		--file "$memtester:usr/bin/memtester" \
		--kmods "$BUILD/kernels/$rel/modules=$kmods"
}
KMODS=virtio_pci,virtio_blk,ext4,loop
PAIR_KMODS=$KMODS,virtio_net	# brings failover, net_failover

# collect_json LOG DIR: every "@@JSON NAME" ... "@@END" block of a guest's
# results LOG, as DIR/NAME.
collect_json() {
	mkdir -p "$2"
	awk -v dir="$2" '
		{ sub(/\r$/, "") }
		/^@@JSON / { f = dir "/" $2; printf "" > f; next }
		/^@@END/ { close(f); f = ""; next }
		f != "" { print >> f }' "$1"
}

# run_pair REL OUT MODE EXPECT: boot guests a and b in MODE (pair or
# pairbench; OUT/pair-a/initramfs.cpio.gz made), wait for both, sum their
# counts into OUT/pair.counts.  A guest that dies before it loads machvm
# (run.py's exit 75: the stock kernel crashed while booting, say) has run
# none of our code: the other guest is stopped and the pair boots again,
# three times in all.
run_pair() {
	local rel=$1 out=$2 mode=$3 expect=$4 attempt rc
	for attempt in 1 2 3; do
		rc=0
		boot_pair "$rel" "$out" "$mode" "$expect" \
			"$([ $attempt -lt 3 ] && echo --boot-retry-exit)" || rc=$?
		[ $rc -eq 75 ] || break
		echo "[$rel $mode] booting the pair again ($((attempt + 1)) of 3)"
	done
	[ $rc -eq 0 ] || rc=1	# 75 three times too
	sum_pair "$rel" "$out" "$mode" || rc=1
	return $rc
}

# pair_guest N NETDEV SELF PEER: run.py for guest N (a or b) of boot_pair
# (its rel, out and common options), on NETDEV, as 10.0.2.SELF talking
# to 10.0.2.PEER.
pair_guest() {
	local n=$1 netdev=$2 self=$3 peer=$4
	# shellcheck disable=SC2086	# RUN_ARGS: words on purpose
	python3 "$ROOT/tests/vm/run.py" "${common[@]}" \
		--initrd "$out/pair-$n/initramfs.cpio.gz" --out "$out/pair-$n" \
		--label "$rel pair-$n" --counts "$out/pair-$n/counts" \
		--drive "mvm-disk=$out/pair-$n/disk.img" \
		--drive "mvm-swap=$out/pair-$n/swap.img" \
		--netdev "$netdev" --mac "52:54:00:4d:56:0$n" \
		--append "mvm_node=$n mvm_ip=10.0.2.$self/24 mvm_peer=10.0.2.$peer${PAIR_APPEND:+ $PAIR_APPEND}" \
		${RUN_ARGS:-}
}

# boot_pair REL OUT MODE EXPECT [RUN_PY_OPTION]: one boot of the pair.
# Returns 75 if a guest died before loading machvm (the other stopped),
# nonzero if a guest failed.
boot_pair() {
	local rel=$1 out=$2 mode=$3 expect=$4 opt=$5 port n pa pb i prc=0 who r
	local -a common
	for n in a b; do
		mkdir -p "$out/pair-$n"
		new_disks "$out/pair-$n"
		rm -f "$out/pair-$n/counts"
	done
	cp "$out/pair-a/initramfs.cpio.gz" "$out/pair-b/initramfs.cpio.gz"
	port=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# shellcheck disable=SC2206	# $opt: no word or one
	common=(--kernel-dir "$BUILD/kernels/$rel" --mode "$mode"
		--expect "$expect" --timeout 600 --test-timeout 300 $opt)
	pair_guest a "socket,listen=127.0.0.1:$port" 1 2 &
	pa=$!
	i=0
	until listening "$port"; do
		i=$((i + 1))
		if ! kill -0 "$pa" 2>/dev/null || [ $i -ge 300 ]; then
			echo "vm.sh: guest a never listened on port $port" >&2
			kill "$pa" 2>/dev/null || true
			wait "$pa" || r=$?
			[ "${r:-0}" -eq 75 ] && return 75
			return 1
		fi
		sleep 0.05
	done
	pair_guest b "socket,connect=127.0.0.1:$port" 2 1 &
	pb=$!
	# The first to end: if it died before loading machvm, so does the
	# pair's boot (the other would only wait for a dead peer).
	r=0
	wait -n -p who "$pa" "$pb" || r=$?
	if [ $r -eq 75 ]; then
		kill "$pa" "$pb" 2>/dev/null || true
		wait "$pa" "$pb" 2>/dev/null || true
		return 75
	fi
	[ $r -eq 0 ] || prc=1
	r=0
	if [ "$who" = "$pa" ]; then wait "$pb" || r=$?; else wait "$pa" || r=$?; fi
	[ $r -ne 75 ] || return 75
	[ $r -eq 0 ] || prc=1
	return $prc
}

# sum_pair REL OUT MODE: both guests' counts into OUT/pair.counts, the
# guests' measurements and the total printed.  Fails if anything failed.
sum_pair() {
	local rel=$1 out=$2 mode=$3 n p f s tp=0 tf=0 ts=0 prc=0
	# A guest without counts (run.py died) is one failure more.
	for n in a b; do
		p=0 f=1 s=0
		if [ -s "$out/pair-$n/counts" ]; then
			read -r p f s < "$out/pair-$n/counts"
		else
			prc=1
		fi
		tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
	done
	[ "$tf" -eq 0 ] || prc=1
	echo "$tp $tf $ts" > "$out/pair.counts"
	# Measurements, TAP diagnostics "# name: key=value ...", for the eye.
	for n in a b; do
		tr -d '\r' < "$out/pair-$n/results.log" 2>/dev/null |
			sed -n "s/^# \([a-z0-9_]*: [a-z0-9_]*=.*\)/[$rel pair-$n] \1/p"
	done
	echo "[$rel $mode] $tp passed, $tf failed$([ "$ts" -eq 0 ] || echo ", $ts skipped")"
	return $prc
}

# pair_bench REL OUT: tests/vm/pairbench.sh on a pair of REL guests; guest
# a's JSON blocks to build/bench/REL.
pair_bench() {
	local rel=$1 out=$2 n prc=0
	make_initrd "$rel" "$out/pair-a/initramfs.cpio.gz" "$BUILD/tests/pair" \
		"$PAIR_KMODS" || return 1
	# Only this run's results: drop what the last pair bench wrote.
	if [ -f "$out/pair-a/results.log" ]; then
		tr -d '\r' < "$out/pair-a/results.log" | sed -n 's/^@@JSON \([^/ ]*\)$/\1/p' |
			while read -r n; do rm -f "$BUILD/bench/$rel/$n"; done
	fi
	run_pair "$rel" "$out" pairbench "" || prc=1
	collect_json "$out/pair-a/results.log" "$BUILD/bench/$rel"
	return $prc
}

# soak_table REL LOG: the soak's final table(s) of a guest's results LOG.
soak_table() {
	tr -d '\r' < "$2" 2>/dev/null | sed -n "s/^# soak| /[$1 soak] /p"
}

# soak REL OUT: the soak on one guest, then on a pair (netmem node loss).
soak() {
	local rel=$1 out=$2 secs=$((${SOAK_MIN:-20} * 60)) dir prc=0
	local more="${SOAK_SEED:+ mvm_soak_seed=$SOAK_SEED}${SOAK_ARGS:+ mvm_soak_args=$SOAK_ARGS}"
	local append="mvm_soak_seconds=$secs$more"
	dir=$out/soak-tests
	rm -rf "$dir" && mkdir -p "$dir"
	cp "$BUILD/tests/vm/soak_test" "$dir/"
	new_disks "$out"
	make_initrd "$rel" "$out/initramfs.cpio.gz" "$dir" "$KMODS"
	# shellcheck disable=SC2086	# RUN_ARGS: words on purpose
	python3 "$ROOT/tests/vm/run.py" --kernel-dir "$BUILD/kernels/$rel" \
		--initrd "$out/initramfs.cpio.gz" --mode check --out "$out" \
		--label "$rel soak" --expect soak_test --counts "$out/counts" \
		--drive "mvm-disk=$out/disk.img" --drive "mvm-swap=$out/swap.img" \
		--timeout $((secs + 1200)) --test-timeout $((secs + 900)) \
		--append "$append" ${RUN_ARGS:-} || prc=1
	soak_table "$rel" "$out/results.log"
	# The pair: netmem node loss.  Its guests get the soak's length on
	# the command line (PAIR_APPEND) and run.py timeouts to match.
	secs=$((${SOAK_PAIR_MIN:-$(( (${SOAK_MIN:-20} + 1) / 2 ))} * 60))
	dir=$out/soak-pair-tests
	rm -rf "$dir" && mkdir -p "$dir"
	cp "$BUILD/tests/vm/soak_test" "$dir/"
	make_initrd "$rel" "$out/pair-a/initramfs.cpio.gz" "$dir" "$PAIR_KMODS"
	PAIR_APPEND="mvm_soak_seconds=$secs$more" \
	RUN_ARGS="--timeout $((secs + 1200)) --test-timeout $((secs + 900)) ${RUN_ARGS:-}" \
		run_pair "$rel" "$out" pair soak_test || prc=1
	soak_table "$rel pair-a" "$out/pair-a/results.log"
	soak_table "$rel pair-b" "$out/pair-b/results.log"
	return $prc
}

rc=0
for rel in "${KERNELS[@]}"; do
	kdir=/usr/src/linux-headers-$rel
	out=$BUILD/vm/${VMTAG:-}$rel
	mkdir -p "$out"
	echo "== $MODE on $rel"
	bash "$ROOT/scripts/build-kmod.sh" "$kdir" "$BUILD/kmod/$rel"
	case $MODE in
	pair)
		testdir=${TESTDIR:-$BUILD/tests/pair}
		make_initrd "$rel" "$out/pair-a/initramfs.cpio.gz" "$testdir" \
			"$PAIR_KMODS"
		run_pair "$rel" "$out" pair \
			"$(cd "$testdir" && ls | sort | paste -sd, -)" || rc=1
		continue
		;;
	pairbench)
		pair_bench "$rel" "$out" || rc=1
		continue
		;;
	soak)
		soak "$rel" "$out" || rc=1
		continue
		;;
	esac
	testdir=${TESTDIR:-$BUILD/tests/vm}
	new_disks "$out"
	make_initrd "$rel" "$out/initramfs.cpio.gz" "$testdir" "$KMODS"
	expect=$(cd "$testdir" && ls | sort | paste -sd, -)
	# Debian's kernels clear every page they allocate (init_on_alloc), so
	# a page the module forgot to clear would read as zeroes anyway.  In
	# check mode every kernel but the newest boots without it: the tests
	# then see the module's own clearing, the newest the default.
	append=
	if [ "$MODE" = check ] && [ "$rel" != "${ALL[-1]}" ]; then
		append="init_on_alloc=0"
	fi
	# shellcheck disable=SC2086	# RUN_ARGS: words on purpose
	python3 "$ROOT/tests/vm/run.py" --kernel-dir "$BUILD/kernels/$rel" \
		--initrd "$out/initramfs.cpio.gz" --mode "$MODE" --out "$out" \
		--label "$rel" --expect "$expect" --counts "$out/counts" \
		--drive "mvm-disk=$out/disk.img" --drive "mvm-swap=$out/swap.img" \
		--append "$append" ${RUN_ARGS:-} || rc=1
	soak_table "$rel" "$out/results.log"
	# Benchmarks print "@@JSON NAME" ... "@@END": keep each per kernel,
	# then the pair benchmarks' (on two guests).
	if [ "$MODE" = bench ]; then
		rm -rf "$BUILD/bench/$rel"	# only this run's results
		collect_json "$out/results.log" "$BUILD/bench/$rel"
		pair_bench "$rel" "$out" || rc=1
	fi
done
if [ "$MODE" = bench ] || [ "$MODE" = pairbench ]; then
	python3 "$ROOT/scripts/merge-bench.py" "$BUILD/bench" "${KERNELS[@]}"
fi
exit $rc
