#!/usr/bin/env bash
# Builds podwarp into build/ (binaries in build/bin/). Extra arguments go to cmake, e.g.
#   scripts/build.sh -DPODWARP_SANITIZE=ON
# BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f $build_dir/CMakeCache.txt ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" "$@" >/dev/null
elif (($# > 0)); then
  cmake -S . -B "$build_dir" "$@" >/dev/null
fi
jobs=${BUILD_JOBS:-$(nproc)}
cmake --build "$build_dir" -j "$jobs"
