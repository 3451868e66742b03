#!/usr/bin/env bash
# Brings up a single-node podwarp cluster on this machine (as root): installs what is missing
# (scripts/deps.sh), builds (scripts/build.sh), then `podwarp up`: etcd, podwarp-control
# (apiserver, scheduler, controllers), a local registry with the test images, and
# podwarp-noded, all state under one data dir; waits until the node is Ready and prints how to
# use it.
#   scripts/up.sh [--data-dir DIR] [podwarp up options]   (default data dir /var/lib/podwarp)
#   scripts/down.sh [--data-dir DIR] [--keep-data|--purge]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh >/dev/null
exec build/bin/podwarp up "$@"
