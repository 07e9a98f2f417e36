#!/bin/sh
# Pair benchmarks, run by /init on both guests of a pair at once
# (mvm_mode=pairbench, make bench), with the module loaded and the network
# up (MVM_NODE, MVM_SELF_IP, MVM_PEER_IP: see tests/vm/init).  Both guests
# run the same lines in the same order; each benchmark meets its peer by
# itself and gives up on a dead or silent one.  As in bench.sh, node a's
# "@@JSON NAME" ... "@@END" blocks are kept as build/bench/<kernel>/NAME,
# and the first benchmark that fails (on either guest) fails the run.
# See docs/benchmarks.md.
set -e
cd /tmp
. /run/machvm-net
machvm-bench-netmem --role "$MVM_NODE" --self "$MVM_SELF_IP" \
	--peer "$MVM_PEER_IP" --rounds 200
