#!/usr/bin/env bash
# Builds podwarp into build/ (binaries in build/bin/). Extra arguments go to cmake, e.g.
#   scripts/build.sh -DPODWARP_SANITIZE=ON
# BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# ccache: paths relative to the checkout and the build folder left out of the hash, so that
# every clone and build folder of this tree shares one cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f $build_dir/CMakeCache.txt ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" "$@" >/dev/null
elif (($# > 0)); then
  cmake -S . -B "$build_dir" "$@" >/dev/null
fi
jobs=${BUILD_JOBS:-$(nproc)}
cmake --build "$build_dir" -j "$jobs"
