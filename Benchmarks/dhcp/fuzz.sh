#!/usr/bin/env bash
# Runs the DHCP parser/engine property test over 1,000,000 inputs in a release build (the debug suite runs 100,000).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$("$here/overlay.sh")"
cd "$pkg"
KILN_DHCP_FUZZ_ITERATIONS="${1:-1000000}" swift test -c release -Xswiftc -enable-testing \
  --scratch-path "$pkg/.build" --filter fuzzParserAndEngine 2>&1 | grep -E "dhcp fuzz|✔|✘|error" 
