#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build, run every test (unit
# and integration against real etcd, kubectl and the Python client). Exits non-zero on any
# failure. Pass ctest arguments to narrow it, e.g. scripts/test.sh -L unit
# --vm: after the suite, also run the cgroup v2 limits test in a qemu VM (tests/vm/run.sh) and
# fail if it cannot run. (The suite itself runs it as ctest case vm.cgroup_limits, skipped when
# qemu or the kernel is missing; with --vm that case is left to run.sh instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
vm=0
args=()
for a in "$@"; do
  if [[ $a == --vm ]]; then vm=1; else args+=("$a"); fi
done
scripts/deps.sh
scripts/build.sh
build_dir=$(cd "${BUILD_DIR:-build}" && pwd)
if ((vm)); then args+=(-LE '^vm$'); fi
(cd "$build_dir" && ctest --output-on-failure --timeout 900 "${args[@]}")
if ((vm)); then
  rc=0
  tests/vm/run.sh --binary "$build_dir/tests/podwarp_vm_limits_check" || rc=$?
  if ((rc == 77)); then
    echo "test.sh: --vm given but the VM test could not run (see above)" >&2
    exit 1
  fi
  exit "$rc"
fi
