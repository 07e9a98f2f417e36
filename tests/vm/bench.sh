#!/bin/sh
# Benchmarks, run inside the VM by /init with the module loaded (make bench).
# One benchmark per line.  Each prints a table and its results between
# "@@JSON NAME" and "@@END" lines; the host keeps every such block as
# build/bench/<kernel>/NAME and merges the kernels into build/bench/NAME.
# The first benchmark that fails fails the run.  See docs/benchmarks.md.
set -e
cd /tmp
machvm-bench-faults --runs 8 --breakdown
# Sequential readers served a cluster at a time, the same policy on both
# sides (issue 11's clustered case): pages/s.
for n in 16 64; do
	machvm-bench-faults --cases copy,uffd --cluster $n --runs 4 \
		--json-name faults-cluster$n.json
done
# A cold 128M file on the ext4 disk read through file-pager's object,
# through a userfaultfd handler preading the same clusters, and through a
# plain mmap (issue 11's cold file case): MB/s, file.json.
machvm-bench-file --threads 1,2
machvm-bench-pageout --size 128M --limit 32M --rounds 2
# Four threads, each on its own quarter: several faults on one object.
machvm-bench-pageout --size 128M --limit 32M --rounds 2 --threads 4 \
	--json-name pageout-threads4.json
# Network memory over loopback (both nodes here): the pair's figure
# (pairbench.sh, netmem.json) without the network between two guests.
machvm-bench-netmem --local --rounds 200 --json-name netmem-local.json
# Real programs (sqlite3, xz, sort) plain, under machvm-run, and at two
# memory limits with Linux swap and with machvm's (programs.json).
sh /programs.sh
