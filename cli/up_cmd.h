// `podwarp up` / `podwarp down`: a single-node cluster on this machine, all state under one
// data dir (default /var/lib/podwarp):
//
//   <data>/etcd/        etcd's data            <data>/control/   PKI, admin.kubeconfig
//   <data>/node-pki/    the node's credentials  <data>/images/    noded's image store
//   <data>/pods/, run/  noded's pod state, namespace pins and sandbox files
//   <data>/registry/    the local OCI registry's storage (docker-registry on loopback)
//   <data>/log/         every process's log, and pods/ (the CRI container logs)
//   <data>/up/          pid files, endpoints, the cgroup and bpffs names this cluster uses
//
// up: starts (or resumes) etcd, podwarp-control (apiserver, scheduler, controllers), the
// registry, then podwarp-noded with a node certificate issued by podwarp-control, pushes the
// test images when scripts/make-test-images.sh is found beside the binaries, waits until the
// node is Ready and prints how to use the cluster. Processes run in their own sessions and
// outlive the command; up is idempotent (running parts are left alone).
//
// down: stops noded first (so that nothing restarts containers), kills every pod through the
// cluster's cgroup (cgroup.kill) and removes the cgroups, stops the registry, the control
// plane and etcd (by the pids up recorded), then unmounts everything under the data dir (not
// the data dir itself: a mount there is the caller's), removes the BPF pins, and removes the
// cluster state so the next up starts fresh: everything but images/ and
// registry/ (caches; --purge removes them too). --keep-data keeps etcd, PKI and pod state so
// that the next up resumes the cluster.
#pragma once

#include <CLI/CLI.hpp>

#include "image_cmd.h"

namespace podwarp::cli {

void add_up_commands(CLI::App& app, GlobalOptions& globals, int& exit_code);

}  // namespace podwarp::cli
