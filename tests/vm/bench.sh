#!/bin/sh
# Benchmarks, run inside the VM by /init with the module loaded.
echo "no benchmarks yet"
