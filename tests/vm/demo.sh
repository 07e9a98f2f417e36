#!/bin/sh
# The demo, run inside the VM by /init with the module loaded.
set -e
echo "== machvm is loaded:"
grep '^machvm ' /proc/modules
echo "== its device:"
ls -l /dev/machvm
echo "== kernel log:"
dmesg | grep 'machvm:' | tail -n 3
