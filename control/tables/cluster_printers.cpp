// Namespaces, nodes, events, leases, priority classes and component statuses: upstream's
// printNamespace, printNode, printEvent, printLease, printPriorityClass and printComponentStatus.
#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "tables/format.h"
#include "tables/printer.h"
#include "tables/timestamps.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

// ---- Namespace ----

constexpr Column kNamespaceColumns[] = {
    kNameColumn,
    {"Status", "string", "", "The status of the namespace"},
    kAgeColumn,
};

json::array namespace_cells(const json::value& ns, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(ns));
  cells.emplace_back(get_string(ns, {"status", "phase"}));
  cells.emplace_back(age_of(ns, now));
  return cells;
}

// ---- Node ----

constexpr std::string_view kNodeAddressesDoc =
    "List of addresses reachable to the node. Queried from cloud provider, if available. More "
    "info: https://kubernetes.io/docs/reference/node/node-status/#addresses";

constexpr Column kNodeColumns[] = {
    kNameColumn,
    {"Status", "string", "", "The status of the node"},
    {"Roles", "string", "", "The roles of the node"},
    kAgeColumn,
    {"Version", "string", "", "Kubelet Version reported by the node."},
    {"Internal-IP", "string", "", kNodeAddressesDoc, 1},
    {"External-IP", "string", "", kNodeAddressesDoc, 1},
    {"OS-Image", "string", "",
     "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1},
    {"Kernel-Version", "string", "",
     "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1},
    {"Container-Runtime", "string", "",
     "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
     "containerd://1.4.2).",
     1},
};

// findNodeRoles: node-role.kubernetes.io/<role> labels and a non-empty kubernetes.io/role label,
// sorted and deduplicated.
std::string node_roles(const json::value& node) {
  constexpr std::string_view kRolePrefix = "node-role.kubernetes.io/";
  std::set<std::string> roles;
  if (const json::object* labels = object_at(node, {"metadata", "labels"})) {
    for (const auto& kv : *labels) {
      std::string_view key = kv.key();
      std::string_view value = kv.value().is_string() ? kv.value().get_string() : "";
      if (key.starts_with(kRolePrefix)) {
        if (key.size() > kRolePrefix.size()) roles.emplace(key.substr(kRolePrefix.size()));
      } else if (key == "kubernetes.io/role" && !value.empty()) {
        roles.emplace(value);
      }
    }
  }
  if (roles.empty()) return "<none>";
  return join(std::vector<std::string>(roles.begin(), roles.end()), ",");
}

std::string_view node_address(const json::value& node, std::string_view type) {
  if (const json::array* addresses = array_at(node, {"status", "addresses"})) {
    for (const json::value& a : *addresses) {
      if (get_string(a, {"type"}) == type) return get_string(a, {"address"});
    }
  }
  return "<none>";
}

json::array node_cells(const json::value& node, TimePoint now) {
  // Only the Ready condition makes the status; the last one listed wins, as in upstream's map.
  std::string status;
  if (const json::array* conditions = array_at(node, {"status", "conditions"})) {
    for (const json::value& c : *conditions) {
      if (get_string(c, {"type"}) == "Ready") {
        status = get_string(c, {"status"}) == "True" ? "Ready" : "NotReady";
      }
    }
  }
  if (status.empty()) status = "Unknown";
  if (get_bool(node, {"spec", "unschedulable"})) status += ",SchedulingDisabled";

  auto or_unknown = [](std::string_view s) {
    return s.empty() ? std::string_view("<unknown>") : s;
  };
  json::array cells;
  cells.emplace_back(name_of(node));
  cells.emplace_back(status);
  cells.emplace_back(node_roles(node));
  cells.emplace_back(age_of(node, now));
  cells.emplace_back(get_string(node, {"status", "nodeInfo", "kubeletVersion"}));
  cells.emplace_back(node_address(node, "InternalIP"));
  cells.emplace_back(node_address(node, "ExternalIP"));
  cells.emplace_back(or_unknown(get_string(node, {"status", "nodeInfo", "osImage"})));
  cells.emplace_back(or_unknown(get_string(node, {"status", "nodeInfo", "kernelVersion"})));
  cells.emplace_back(
      or_unknown(get_string(node, {"status", "nodeInfo", "containerRuntimeVersion"})));
  return cells;
}

// ---- Event ----

constexpr Column kEventColumns[] = {
    {"Last Seen", "string", "",
     "The time at which the most recent occurrence of this event was recorded."},
    {"Type", "string", "",
     "Type of this event (Normal, Warning), new types could be added in the "
     "future"},
    {"Reason", "string", "",
     "This should be a short, machine understandable string that gives the reason for the "
     "transition into the object's current status."},
    {"Object", "string", "", "The object that this event is about."},
    {"Subobject", "string", "",
     "If referring to a piece of an object instead of an entire object, this string should "
     "contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. "
     "For example, if the object reference is to a container within a pod, this would take on a "
     "value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container "
     "that triggered the event) or if no container name is specified \"spec.containers[2]\" "
     "(container with index 2 in this pod). This syntax is chosen only to have some well-defined "
     "way of referencing a part of an object.",
     1},
    {"Source", "string", "",
     "The component reporting this event. Should be a short machine understandable string.", 1},
    {"Message", "string", "", "A human-readable description of the status of this operation."},
    {"First Seen", "string", "",
     "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1},
    {"Count", "string", "", "The number of times this event has occurred.", 1},
    {"Name", "string", "name", kNameDoc, 1},
};

json::array event_cells(const json::value& ev, TimePoint now) {
  // First Seen falls back to eventTime (events.k8s.io writers), Last Seen to First Seen, and a
  // series overrides both Last Seen and the count.
  std::string first_seen;
  if (timestamp(find_path(ev, {"firstTimestamp"}))) {
    first_seen = since(find_path(ev, {"firstTimestamp"}), now);
  } else {
    first_seen = since(find_path(ev, {"eventTime"}), now);
  }
  std::string last_seen;
  if (timestamp(find_path(ev, {"lastTimestamp"}))) {
    last_seen = since(find_path(ev, {"lastTimestamp"}), now);
  } else {
    last_seen = first_seen;
  }
  std::int64_t count = get_int(ev, {"count"});
  if (const json::object* series = object_at(ev, {"series"})) {
    last_seen = since(find_path(ev, {"series", "lastObservedTime"}), now);
    count = integer(*series, "count");
  } else if (count == 0) {
    count = 1;  // Singleton events have no count in the events.k8s.io API.
  }

  const std::string_view kind = get_string(ev, {"involvedObject", "kind"});
  const std::string_view involved = get_string(ev, {"involvedObject", "name"});
  std::string target = to_lower(kind);
  if (!involved.empty()) target = fmt::format("{}/{}", target, involved);

  // formatEventSource: component (or reportingComponent), then ", host" (or reportingInstance).
  std::string_view component = get_string(ev, {"source", "component"});
  if (component.empty()) component = get_string(ev, {"reportingComponent"});
  std::string_view host = get_string(ev, {"source", "host"});
  if (host.empty()) host = get_string(ev, {"reportingInstance"});
  std::string source(component);
  if (!host.empty()) source = fmt::format("{}, {}", component, host);

  json::array cells;
  cells.emplace_back(last_seen);
  cells.emplace_back(get_string(ev, {"type"}));
  cells.emplace_back(get_string(ev, {"reason"}));
  cells.emplace_back(target);
  cells.emplace_back(get_string(ev, {"involvedObject", "fieldPath"}));
  cells.emplace_back(source);
  cells.emplace_back(trim_space(get_string(ev, {"message"})));
  cells.emplace_back(first_seen);
  cells.emplace_back(count);
  cells.emplace_back(name_of(ev));
  return cells;
}

// ---- Lease ----

constexpr Column kLeaseColumns[] = {
    kNameColumn,
    {"Holder", "string", "",
     "holderIdentity contains the identity of the holder of a current lease. If Coordinated "
     "Leader Election is used, the holder identity must be equal to the elected "
     "LeaseCandidate.metadata.name field."},
    kAgeColumn,
};

json::array lease_cells(const json::value& lease, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(lease));
  cells.emplace_back(get_string(lease, {"spec", "holderIdentity"}));
  cells.emplace_back(age_of(lease, now));
  return cells;
}

// ---- PriorityClass ----

constexpr Column kPriorityClassColumns[] = {
    kNameColumn,
    {"Value", "integer", "",
     "value represents the integer value of this priority class. This is the actual priority "
     "that pods receive when they have the name of this class in their pod spec."},
    {"Global-Default", "boolean", "",
     "globalDefault specifies whether this PriorityClass should be considered as the default "
     "priority for pods that do not have any priority class. Only one PriorityClass can be "
     "marked as `globalDefault`. However, if more than one PriorityClasses exists with their "
     "`globalDefault` field set to true, the smallest value of such global default "
     "PriorityClasses will be used as the default priority."},
    kAgeColumn,
    {"PreemptionPolicy", "string", "",
     "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, "
     "PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."},
};

json::array priority_class_cells(const json::value& pc, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(pc));
  cells.emplace_back(get_int(pc, {"value"}, 0));
  cells.emplace_back(get_bool(pc, {"globalDefault"}, false));
  cells.emplace_back(age_of(pc, now));
  cells.emplace_back(get_string(pc, {"preemptionPolicy"}));
  return cells;
}

// ---- ComponentStatus ----

constexpr Column kComponentStatusColumns[] = {
    kNameColumn,
    {"Status", "string", "", "Status of the component conditions"},
    {"Message", "string", "", "Message of the component conditions"},
    {"Error", "string", "", "Error of the component conditions"},
};

json::array component_status_cells(const json::value& cs, TimePoint) {
  std::string status = "Unknown";
  std::string message;
  std::string error;
  if (const json::value* conds = find_path(cs, {"conditions"}); conds && conds->is_array()) {
    for (const json::value& c : conds->as_array()) {
      if (get_string(c, {"type"}) != "Healthy") continue;
      status = get_string(c, {"status"}) == "True" ? "Healthy" : "Unhealthy";
      message = get_string(c, {"message"});
      error = get_string(c, {"error"});
      break;
    }
  }
  json::array cells;
  cells.emplace_back(name_of(cs));
  cells.emplace_back(status);
  cells.emplace_back(message);
  cells.emplace_back(error);
  return cells;
}

constexpr Printer kPrinters[] = {
    {"", "Namespace", kNamespaceColumns, &namespace_cells},
    {"", "Node", kNodeColumns, &node_cells},
    {"", "Event", kEventColumns, &event_cells},
    {"coordination.k8s.io", "Lease", kLeaseColumns, &lease_cells},
    {"scheduling.k8s.io", "PriorityClass", kPriorityClassColumns, &priority_class_cells},
    {"", "ComponentStatus", kComponentStatusColumns, &component_status_cells},
};

}  // namespace

std::span<const Printer> cluster_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
