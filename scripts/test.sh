#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build, run every test (unit
# and integration against real etcd, kubectl and the Python client). Exits non-zero on any
# failure. Pass ctest arguments to narrow it, e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 "$@"
