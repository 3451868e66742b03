// `podwarp trace`: NetworkPolicy flow events of this node, as they happen, like
// `hubble observe`. Reads the pw_np_flows ring buffer that noded --network-policy pins
// (<bpf-dir>/podwarp-noded/netpol/pw_np_flows; noded/netpol/flow_events.h) and prints one line
// (text or JSON) per decided new flow: ALLOWED by a policy rule (AllowedNew) or because no
// policy isolates the pod (Unisolated), or DENIED (DeniedIngress / DeniedEgress). Established
// traffic, replies and node traffic are not events.
//
// Pod names come from the API (a pod list at start, listed again at most once a second when a
// flow has an address not known yet); without a kubeconfig only addresses are shown. Events
// from before the command started are skipped. The ring has one consumer position: run one
// trace per node at a time. Root only (bpf_obj_get on the pin).
#pragma once

#include <CLI/CLI.hpp>

#include "image_cmd.h"

namespace podwarp::cli {

void add_trace_command(CLI::App& app, GlobalOptions& globals, int& exit_code);

}  // namespace podwarp::cli
