// RBAC bindings: upstream's printRoleBinding and printClusterRoleBinding. Roles and ClusterRoles
// print as upstream's printRole/printClusterRole do, NAME and CREATED AT, which is the default
// table (tables.cpp).
#include <string>
#include <vector>

#include "tables/format.h"
#include "tables/printer.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

constexpr Column kRoleBindingColumns[] = {
    kNameColumn,
    {"Role", "string", "",
     "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
     "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."},
    kAgeColumn,
    {"Users", "string", "", "Users in the roleBinding", 1},
    {"Groups", "string", "", "Groups in the roleBinding", 1},
    {"ServiceAccounts", "string", "", "ServiceAccounts in the roleBinding", 1},
};

constexpr Column kClusterRoleBindingColumns[] = {
    kNameColumn,
    {"Role", "string", "",
     "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be "
     "resolved, the Authorizer must return an error."},
    kAgeColumn,
    {"Users", "string", "", "Users in the clusterRoleBinding", 1},
    {"Groups", "string", "", "Groups in the clusterRoleBinding", 1},
    {"ServiceAccounts", "string", "", "ServiceAccounts in the clusterRoleBinding", 1},
};

// rbac.SubjectsStrings: users, groups, and service accounts as namespace/name.
json::array binding_cells(const json::value& b, TimePoint now) {
  std::vector<std::string> users, groups, sas;
  if (const json::value* subjects = find_path(b, {"subjects"}); subjects && subjects->is_array()) {
    for (const json::value& s : subjects->as_array()) {
      std::string name(get_string(s, {"name"}));
      std::string_view kind = get_string(s, {"kind"});
      if (kind == "User") {
        users.push_back(name);
      } else if (kind == "Group") {
        groups.push_back(name);
      } else if (kind == "ServiceAccount") {
        std::string_view ns = get_string(s, {"namespace"});
        sas.push_back(ns.empty() ? name : std::string(ns) + "/" + name);
      }
    }
  }
  json::array cells;
  cells.emplace_back(name_of(b));
  cells.emplace_back(std::string(get_string(b, {"roleRef", "kind"})) + "/" +
                     std::string(get_string(b, {"roleRef", "name"})));
  cells.emplace_back(age_of(b, now));
  cells.emplace_back(join(users, ", "));
  cells.emplace_back(join(groups, ", "));
  cells.emplace_back(join(sas, ", "));
  return cells;
}

constexpr Printer kPrinters[] = {
    {"rbac.authorization.k8s.io", "RoleBinding", kRoleBindingColumns, &binding_cells},
    {"rbac.authorization.k8s.io", "ClusterRoleBinding", kClusterRoleBindingColumns, &binding_cells},
};

}  // namespace

std::span<const Printer> rbac_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
