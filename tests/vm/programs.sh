#!/bin/sh
# programs.sh: real programs from Debian packages, run in the VM by bench.sh
# (make bench), as a user of machvm-run would run them.  Each program runs
#   plain    (a) as is;
#   mvm      (b) under machvm-run --resident 1G: nothing is paged, so what
#                it costs is the preload allocator and machvm's faults;
#   linux L  (c) in a memory cgroup with memory.max = L, Linux swap on the
#                swap partition ($MVM_SWAP_DEV, mkswap + swapon);
#   machvm L (d) under machvm-run --resident L, the same partition as
#                machvm's swap store (machvmctl swap add);
# for two limits L per program.  Every run's output (its MD5) must equal
# the plain run's.  Reported: wall time, and the pages read from and
# written to swap (/proc/vmstat pswpin/pswpout for Linux; machvmctl stats
# pageins/swap_writes for machvm, also faults and pageouts).  A table,
# then the results between "@@JSON programs.json" and "@@END".
# $PROGS_ONLY: a space-separated subset of the program names.
# See docs/benchmarks.md.
set -eu
W=/tmp/progs
CG=/sys/fs/cgroup/machvm-progs
SWAP=${MVM_SWAP_DEV:?no swap partition (MVM_SWAP_DEV)}
export LC_ALL=C
rm -rf "$W"
mkdir -p "$W"

# Inputs, in tmpfs (charged to this shell's cgroup, the root, not to the
# runs'; reading them charges nothing).
SQL_ROWS=16000
cat > "$W/q.sql" <<EOF
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $SQL_ROWS)
INSERT INTO t SELECT x, (x * 7919) % $SQL_ROWS,
	printf('%08x-%040d', (x * 2654435761) % 4294967296, x) FROM c;
CREATE INDEX ik ON t(k);
CREATE INDEX iv ON t(v);
UPDATE t SET v = v || 'u', k = k + 1 WHERE k % 3 = 0;
SELECT count(*), sum(k), sum(length(v)), min(v), max(v) FROM t;
SELECT sum(id) FROM (SELECT id FROM t ORDER BY v LIMIT 1000);
EOF
# sort: 120k lines of pseudo-random keys (awk's rand, fixed seed).
awk 'BEGIN { srand(7); for (i = 0; i < 120000; i++)
	printf "%09d %s %05x\n", int(rand() * 1e9), (rand() < 0.5 ? "alpha" : "beta"), i }' \
	> "$W/sort.in"
# xz: 1 MiB of the binaries and libraries in this image (typical data).
cat /bin/busybox /usr/bin/* /lib/x86_64-linux-gnu/* 2>/dev/null |
	head -c 1048576 > "$W/xz.in"

# name|command|L1 L2 (MiB)
PROGRAMS="sqlite3|/usr/bin/sqlite3 < $W/q.sql|5 3
xz|/usr/bin/xz -3 -c $W/xz.in|13 12
sort|/usr/bin/sort $W/sort.in|10 6"

# json_num KEY: the first number named KEY in the JSON on stdin.
json_num() {
	awk -v k="\"$1\"" '{ if (match($0, k " *: *[0-9]+")) {
		s = substr($0, RSTART, RLENGTH); sub(/.*: */, "", s); print s; exit } }'
}
stat_mvm() { machvmctl stats --json | json_num "$1"; }	# a machvm counter
stat_vm() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }

# run NAME CMD [PREFIX...]: CMD (a shell command line) after PREFIX, its
# output's MD5 to $W/sum; to $W/time its wall, user and system time (s)
# and its minor faults (those of its children included).  Fails the script
# when CMD fails.
run() {
	name=$1 cmd=$2
	shift 2
	rm -f "$W/fail" "$W/time"
	{ busybox time -f "%e %U %S %R" -o "$W/time" "$@" sh -c "$cmd" ||
		echo $? > "$W/fail"; } | md5sum > "$W/sum"
	if [ -e "$W/fail" ] || [ ! -s "$W/time" ]; then
		echo "programs: $name: '$*' '$cmd' failed ($(cat "$W/fail"))" >&2
		exit 1
	fi
}

# check NAME CASE: this run's output equals the plain run's.
check() {
	if ! cmp -s "$W/sum" "$W/$1.sum"; then
		echo "programs: $1 $2: output differs from the plain run" >&2
		exit 1
	fi
}


# The memory cgroup for (c).
grep -q cgroup2 /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
grep -q memory /sys/fs/cgroup/cgroup.subtree_control ||
	echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p "$CG"

J="$W/json"
: > "$J"
T="$W/table"
: > "$T"
OLDIFS=$IFS

# (a) and (b) for every program, alternating; then (c) for every program
# and limit with Linux swap on; then (d) with machvm's store on the same
# partition.
echo "$PROGRAMS" | while IFS='|' read -r name cmd limits; do
	IFS=$OLDIFS
	case " ${PROGS_ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
	run "$name" "$cmd"
	cp "$W/sum" "$W/$name.sum"
	ta=$(cat "$W/time")
	f0=$(stat_mvm faults)
	run "$name" "$cmd" machvm-run --resident 1G --
	check "$name" mvm
	tb=$(cat "$W/time")
	fb=$(($(stat_mvm faults) - f0))
	echo "$name $ta $tb $fb" >> "$W/ab"
	echo "programs: $name plain $ta, machvm-run $tb ($fb machvm faults)"
done

mkswap "$SWAP" > /dev/null
swapon "$SWAP"
echo "$PROGRAMS" | while IFS='|' read -r name cmd limits; do
	IFS=$OLDIFS
	[ -e "$W/$name.sum" ] || continue
	for l in $limits; do
		echo $((l << 20)) > "$CG/memory.max"
		i0=$(stat_vm pswpin) o0=$(stat_vm pswpout)
		# shellcheck disable=SC2016	# $$ and $@: the inner shell's
		run "$name" "$cmd" sh -c 'echo $$ > "$0" && exec "$@"' \
			"$CG/cgroup.procs"
		check "$name" "linux $l"
		i=$(($(stat_vm pswpin) - i0)) o=$(($(stat_vm pswpout) - o0))
		read -r t _ < "$W/time"
		echo "$name $l $t $i $o" >> "$W/c"
		echo "programs: $name linux ${l}M ${t}s in $i out $o"
	done
done
swapoff "$SWAP"
echo max > "$CG/memory.max"

machvmctl swap add "$SWAP" --prio 10 > /dev/null
echo "$PROGRAMS" | while IFS='|' read -r name cmd limits; do
	IFS=$OLDIFS
	[ -e "$W/$name.sum" ] || continue
	for l in $limits; do
		i0=$(stat_mvm pageins) o0=$(stat_mvm swap_writes)
		p0=$(stat_mvm pageouts) f0=$(stat_mvm faults)
		run "$name" "$cmd" machvm-run --resident "${l}M" --
		check "$name" "machvm $l"
		i=$(($(stat_mvm pageins) - i0)) o=$(($(stat_mvm swap_writes) - o0))
		p=$(($(stat_mvm pageouts) - p0)) f=$(($(stat_mvm faults) - f0))
		read -r t _ < "$W/time"
		echo "$name $l $t $i $o $p $f" >> "$W/d"
		echo "programs: $name machvm ${l}M ${t}s in $i out $o"
	done
done
id=$(machvmctl swap list --json | json_num id)
machvmctl swap remove "$id" > /dev/null

# Compressed memory (stores.json, issue 13): the same programs and limits,
#   zswap    (e) in the memory cgroup at L with Linux swap on the
#                partition behind zswap (on, the kernel's default
#                compressor and pool);
#   compress (f) under machvm-run --pager compress --resident L
#                (store-pager: zstd level 3 in its own memory, no swap).
# Both keep the compressed pages in RAM beyond L.  Every 0.1 s a sampler
# notes what each holds: zswap's stored_pages and pool_total_size
# (debugfs), store-pager's pages and bytes_stored (its SIGUSR1 line, sent
# once it blocks SIGUSR1); the compression ratio is taken at the peak of
# pages held.  Reported: time, that peak and ratio, and (e)'s pages that
# went past zswap to the partition (pswpout).
ZS=/sys/module/zswap/parameters/enabled
ZD=/sys/kernel/debug/zswap
[ -d "$ZD" ] || mount -t debugfs none /sys/kernel/debug
# sample_zswap: while $W/sampling exists, the peak of stored_pages (and
# the pool's bytes then) to $W/peak.
sample_zswap() {
	best=0 pool=0
	while [ -e "$W/sampling" ]; do
		s=$(cat "$ZD/stored_pages") p=$(cat "$ZD/pool_total_size")
		[ "$s" -gt "$best" ] && best=$s pool=$p
		sleep 0.1
	done
	echo "$best $pool" > "$W/peak"
}
# sample_store: while $W/sampling exists, SIGUSR1 to store-pager once it
# blocks the signal (SigBlk bit 0x200; before that it would kill it).
sample_store() {
	while [ -e "$W/sampling" ]; do
		pid=
		for d in /proc/[0-9]*; do
			[ "$(cat "$d/comm" 2>/dev/null)" = store-pager ] &&
				pid=${d#/proc/} && break
		done
		if [ -n "$pid" ]; then
			case $(awk '/^SigBlk/ { print $2 }' "/proc/$pid/status" 2>/dev/null) in
			*[2367abef]??) kill -USR1 "$pid" 2>/dev/null ;;
			esac
		fi
		sleep 0.1
	done
}
# sampled NAME CASE SAMPLER CMD PREFIX...: run() with SAMPLER beside it,
# stderr to $W/err (shown if the run fails).
sampled() {
	sn=$1 sc=$2 sampler=$3
	shift 3
	: > "$W/sampling"
	$sampler &
	sp=$!
	if ! (run "$sn" "$@" 2> "$W/err"); then
		rm -f "$W/sampling"; wait "$sp"; cat "$W/err" >&2; exit 1
	fi
	rm -f "$W/sampling"
	wait "$sp"
	check "$sn" "$sc"
}
mkswap "$SWAP" > /dev/null
swapon "$SWAP"
echo 1 > "$ZS"
echo "$PROGRAMS" | while IFS='|' read -r name cmd limits; do
	IFS=$OLDIFS
	[ -e "$W/$name.sum" ] || continue
	for l in $limits; do
		echo $((l << 20)) > "$CG/memory.max"
		o0=$(stat_vm pswpout)
		# shellcheck disable=SC2016	# $$ and $@: the inner shell's
		sampled "$name" "zswap $l" sample_zswap "$cmd" \
			sh -c 'echo $$ > "$0" && exec "$@"' "$CG/cgroup.procs"
		o=$(($(stat_vm pswpout) - o0))
		read -r t _ < "$W/time"
		read -r zp zb < "$W/peak"
		echo "$name $l $t $zp $zb $o" >> "$W/e"
		echo "programs: $name zswap ${l}M ${t}s peak $zp pages in $zb bytes, to disk $o"
	done
done
echo 0 > "$ZS"
swapoff "$SWAP"
echo max > "$CG/memory.max"
echo "$PROGRAMS" | while IFS='|' read -r name cmd limits; do
	IFS=$OLDIFS
	[ -e "$W/$name.sum" ] || continue
	for l in $limits; do
		sampled "$name" "compress $l" sample_store "$cmd" \
			machvm-run --pager compress --resident "${l}M" --
		read -r t _ < "$W/time"
		# The line with the most pages: "... pages N, bytes stored B, ..."
		awk '/store-pager: .*pages [0-9]+, bytes stored/ {
			for (i = 1; i < NF; i++) {
				if ($i == "pages") p = $(i + 1) + 0
				if ($i == "stored") b = $(i + 1) + 0
			}
			if (p > best) { best = p; bytes = b }
		} END { print best + 0, bytes + 0 }' "$W/err" > "$W/peak"
		read -r cp cb < "$W/peak"
		echo "$name $l $t $cp $cb" >> "$W/f"
		echo "programs: $name compress ${l}M ${t}s peak $cp pages in $cb bytes"
	done
done
rmdir "$CG"

# The table and the JSON, from the result files.
awk -v W="$W" -v J="$J" '
function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "null" }
BEGIN {
	while ((getline < (W "/ab")) > 0) {
		n++; name[n] = $1; ta[$1] = $2; ua[$1] = $3; sa[$1] = $4; ra[$1] = $5
		tb[$1] = $6; ub[$1] = $7; sb[$1] = $8; rb[$1] = $9; fb[$1] = $10
	}
	while ((getline < (W "/c")) > 0) {
		k = $1 " " $2; lim[$1] = lim[$1] " " $2
		tc[k] = $3; ci[k] = $4; co[k] = $5
	}
	while ((getline < (W "/d")) > 0) {
		k = $1 " " $2
		td[k] = $3; di[k] = $4; do_[k] = $5; dp[k] = $6; df[k] = $7
	}
	printf "%-8s %8s %7s %7s %7s %8s %7s %7s %7s %7s %6s\n", "program",
		"plain s", "user", "sys", "minflt", "mvm s", "user", "sys",
		"minflt", "mvmflt", "b/a"
	for (i = 1; i <= n; i++) {
		p = name[i]
		printf "%-8s %8s %7s %7s %7d %8s %7s %7s %7d %7d %6s\n", p, ta[p],
			ua[p], sa[p], ra[p], tb[p], ub[p], sb[p], rb[p], fb[p],
			r(tb[p], ta[p])
	}
	printf "\n%-8s %5s %8s %7s %7s %8s %7s %7s %6s %6s\n", "program", "L MiB",
		"linux s", "pswpin", "pswpout", "machvm s", "pageins", "swapwr", "c/d", "io d/c"
	printf "{\"programs\": [" > J
	for (i = 1; i <= n; i++) {
		p = name[i]
		printf "%s\n  {\"name\": \"%s\", " \
			"\"plain\": {\"time_s\": %s, \"user_s\": %s, \"sys_s\": %s, \"minflt\": %d}, " \
			"\"machvm_run\": {\"time_s\": %s, \"user_s\": %s, \"sys_s\": %s, " \
			"\"minflt\": %d, \"machvm_faults\": %d}, \"b_over_a\": %s, \"limits\": [", \
			(i > 1 ? "," : ""), p, ta[p], ua[p], sa[p], ra[p], tb[p], ub[p], sb[p], \
			rb[p], fb[p], r(tb[p], ta[p]) > J
		m = split(lim[p], ls, " ")
		for (j = 1; j <= m; j++) {
			k = p " " ls[j]
			io = r(di[k] + do_[k], ci[k] + co[k])
			printf "%-8s %5s %8s %7d %7d %8s %7d %7d %6s %6s\n", p, ls[j],
				tc[k], ci[k], co[k], td[k], di[k], do_[k], r(tc[k], td[k]), io
			printf "%s\n    {\"limit_mib\": %s, " \
				"\"linux\": {\"time_s\": %s, \"pswpin\": %d, \"pswpout\": %d}, " \
				"\"machvm\": {\"time_s\": %s, \"pageins\": %d, \"swap_writes\": %d, " \
				"\"pageouts\": %d, \"faults\": %d}, \"c_over_d\": %s, " \
				"\"io_d_over_c\": %s}", \
				(j > 1 ? "," : ""), ls[j], tc[k], ci[k], co[k], td[k], di[k], \
				do_[k], dp[k], df[k], r(tc[k], td[k]), io > J
		}
		printf "]}" > J
	}
	printf "\n]}\n" > J
}'
echo "@@JSON programs.json"
cat "$J"
echo "@@END"

# stores.json: (e) against (f).
awk -v W="$W" -v J="$W/sjson" '
function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "null" }
BEGIN {
	while ((getline < (W "/e")) > 0) {
		k = $1 " " $2; n++; key[n] = k
		te[k] = $3; ep[k] = $4; eb[k] = $5; eo[k] = $6
	}
	while ((getline < (W "/f")) > 0) {
		k = $1 " " $2; tf[k] = $3; fp[k] = $4; fb[k] = $5
	}
	printf "\n%-8s %5s %8s %8s %6s %7s %10s %8s %6s %6s\n", "program", "L MiB",
		"zswap s", "peak pg", "ratio", "to disk", "compress s", "peak pg",
		"ratio", "e/f"
	printf "{\"compress\": [" > J
	for (i = 1; i <= n; i++) {
		k = key[i]; split(k, nl, " ")
		ze = r(ep[k] * 4096, eb[k]); zf = r(fp[k] * 4096, fb[k])
		printf "%-8s %5s %8s %8d %6s %7d %10s %8d %6s %6s\n", nl[1], nl[2],
			te[k], ep[k], ze, eo[k], tf[k], fp[k], zf, r(te[k], tf[k])
		printf "%s\n  {\"name\": \"%s\", \"limit_mib\": %s, " \
			"\"zswap\": {\"time_s\": %s, \"peak_pages\": %d, " \
			"\"peak_pool_bytes\": %d, \"ratio\": %s, \"pswpout\": %d}, " \
			"\"compress\": {\"time_s\": %s, \"peak_pages\": %d, " \
			"\"peak_bytes_stored\": %d, \"ratio\": %s}, " \
			"\"zswap_time_over_compress\": %s}", (i > 1 ? "," : ""), \
			nl[1], nl[2], te[k], ep[k], eb[k], ze, eo[k], tf[k], fp[k], \
			fb[k], zf, r(te[k], tf[k]) > J
	}
	printf "\n]}\n" > J
}'
echo "@@JSON stores.json"
cat "$W/sjson"
echo "@@END"
