#!/usr/bin/env bash
# Runs every benchmark against its peer in the same run and prints their tables.
# Builds first. Arguments go to each benchmark (e.g. --pods 2000 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh >/dev/null
ulimit -n 65536 2>/dev/null || true
build/bin/apiserver_bench "$@"
