#!/bin/sh
# What a browser test runs when CMake found no node: skip (77), or fail under CI=true.
echo "node not found: install Debian's nodejs and npm (./dev.sh deps), then run npm ci in tests/ui"
[ "${CI:-}" = true ] && exit 1
exit 77
