#!/bin/sh
# The demo, run inside the VM by /init with the module loaded: a file
# served by file-pager through a machvm memory object to a client in
# another process, checksummed against the file itself.
set -e
echo "== machvm is loaded:"
grep '^machvm ' /proc/modules
ls -l /dev/machvm

FILE=/tmp/demo.bin
echo
echo "== a 3 MiB file to serve (busybox, three times over):"
cat /bin/busybox /bin/busybox /bin/busybox | head -c 3145728 > $FILE
ls -l $FILE
WANT=$(machvm-map --file $FILE)
echo "file:   $WANT"

echo
echo "== file-pager serves it over io_uring; machvm-map maps the object in"
echo "   another process (the object fd travels over a Unix socket):"
file-pager --verbose --readahead 256K $FILE --socket /tmp/demo.sock \
	2> /tmp/pager.log &
PAGER=$!
machvmctl stats > /tmp/stats.before
# The client holds the mapping a moment so machvmctl can see it.
machvm-map --socket /tmp/demo.sock --wait 10 --region --hold 2 > /tmp/map.out &
CLIENT=$!
sleep 1
echo
echo "== machvmctl objects (while the client holds its mapping):"
machvmctl objects
wait $CLIENT
cat /tmp/map.out
GOT=$(grep '^size=' /tmp/map.out)
echo "object: $GOT"
echo
echo "== machvmctl stats, before and after the client ran:"
machvmctl stats > /tmp/stats.after
paste /tmp/stats.before /tmp/stats.after |
	awk '{ printf "  %-20s %8s -> %s\n", $1, $2, $4 }'
sleep 1   # let the pager log the terminate message
kill $PAGER
wait $PAGER || true

echo
echo "== what the pager saw (first and last messages):"
head -n 8 /tmp/pager.log
echo "   ..."
tail -n 3 /tmp/pager.log
echo "   $(grep -c 'DATA_REQUEST' /tmp/pager.log) data_request messages for" \
	"$(($(stat -c %s $FILE) / 4096)) pages (clusters and read-ahead)"

echo
if [ "$GOT" = "$WANT" ]; then
	echo "== checksums match: the object holds the file"
else
	echo "== MISMATCH: file $WANT, object $GOT"
	exit 1
fi

echo
echo "== pageout: the default pager gets a swap file"
SWAPDIR=${MVM_DISK_DIR:-/tmp}
machvmctl swap add "$SWAPDIR/demo.swap" --size 64M
machvmctl pageout show
machvmctl stats > /tmp/stats.before

echo
echo "== an unmodified program (memtester, which checks its own memory) with"
echo "   its heap in an anonymous machvm object, 2 MiB resident for 8 MiB:"
MEMTESTER_TEST_MASK=0x3 machvm-run --resident 2M --verbose -- memtester 8M 1 \
	> /tmp/memtester.out 2> /tmp/run.err
tr -d '\b' < /tmp/memtester.out |
	awk -F' : ' '/ : / { n = split($2, w, " "); printf "  %s: %s\n", $1, w[n] }
		/^Done/ { print "  " $0 }' | sed 's/^  */  /'
cat /tmp/run.err
machvmctl stats > /tmp/stats.after
echo
echo "== machvmctl stats, pageout counters before and after:"
paste /tmp/stats.before /tmp/stats.after |
	grep -E '^ *(pageouts|pageins|swap_writes|scans|ref_hits|limit_waits|default_taken)' |
	awk '{ printf "  %-20s %8s -> %s\n", $1, $2, $4 }'
machvmctl swap list

echo
echo "== a file edited through a machvm mapping: file-pager gets the written"
echo "   pages back (data_return) when a pageout pass runs, and writes them"
echo "   to the file"
file-pager $FILE --socket /tmp/demo3.sock 2> /tmp/pager3.log &
PAGER=$!
machvm-map --socket /tmp/demo3.sock --wait 10 --write text:machvm-was-here \
	--region --hold 4 > /tmp/map3.out &
CLIENT=$!
i=0
until grep -q '^region' /tmp/map3.out 2>/dev/null || [ $i -ge 100 ]; do
	sleep 0.1; i=$((i + 1))
done
NAME=$(sed -n 's/.* name=\([0-9]*\).*/\1/p' /tmp/map3.out)
echo "-- object $NAME while mapped and written:"
machvmctl object show "$NAME" | grep -E '^(name|resident|dirty|returned|pageouts)'
machvmctl stats > /tmp/stats.before
echo "-- machvmctl pageout run --object $NAME --force:"
machvmctl pageout run --object "$NAME" --force
sleep 1	# the pager writes the returned pages and answers
machvmctl stats > /tmp/stats.after
echo "-- stats before and after the pass:"
paste /tmp/stats.before /tmp/stats.after |
	grep -E '^ *(pageouts|returned|scans|swap_writes)' |
	awk '{ printf "  %-20s %8s -> %s\n", $1, $2, $4 }'
wait $CLIENT
WANT=$(grep '^size=' /tmp/map3.out)
kill $PAGER
wait $PAGER || true
GOT=$(machvm-map --file $FILE)
echo "mapping: $WANT"
echo "file:    $GOT"
head -c 48 $FILE; echo
machvmctl swap remove 1
[ "$WANT" = "$GOT" ] || { echo "== MISMATCH: the file lost the writes"; exit 1; }
echo "== the file holds what was written through the mapping"

echo
echo "== netmem-server: one object, two nodes (two servers on this machine"
echo "   standing in for two machines); node 0 writes, node 1 reads"
PEERS=127.0.0.1:7000,127.0.0.1:7001
netmem-server --node 0 --peers $PEERS --size 4M --socket /tmp/nm0.sock &
NM0=$!
netmem-server --node 1 --peers $PEERS --size 4M --socket /tmp/nm1.sock &
NM1=$!
machvm-map --socket /tmp/nm0.sock --wait 30 --write text:hello-from-node-0
machvm-map --socket /tmp/nm1.sock --wait 30 --verify text:hello-from-node-0
echo "-- node 1 writes, node 0 reads it back:"
machvm-map --socket /tmp/nm1.sock --write byte:42
machvm-map --socket /tmp/nm0.sock --verify byte:42
kill $NM0 $NM1
wait $NM0 $NM1 2>/dev/null || true
echo "== both nodes saw each other's writes"
