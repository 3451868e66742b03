// RoleBinding, ClusterRoleBinding, Role and ClusterRole rows against what upstream's printers give.
#include <gtest/gtest.h>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::cells;
using testing::parse;

TEST(RbacPrinters, RoleBindingWithEverySubjectKind) {
  EXPECT_EQ(cells("rbac.authorization.k8s.io", "RoleBinding", R"({
    "metadata": {"name": "readers", "namespace": "dev", "creationTimestamp": "2025-01-15T11:00:00Z"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
    "subjects": [
      {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
      {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"},
      {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "qa"},
      {"kind": "ServiceAccount", "name": "ci", "namespace": "dev"},
      {"kind": "ServiceAccount", "name": "bare"}]})"),
            parse(R"(["readers", "ClusterRole/view", "60m", "alice, bob", "qa", "dev/ci, bare"])"));
  EXPECT_EQ(cells("rbac.authorization.k8s.io", "RoleBinding",
                  R"({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"}})"),
            parse(R"(["b", "Role/r", "<unknown>", "", "", ""])"));
}

TEST(RbacPrinters, ClusterRoleBindingAndRoles) {
  EXPECT_EQ(cells("rbac.authorization.k8s.io", "ClusterRoleBinding", R"({
    "metadata": {"name": "cluster-admin", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"}]})"),
            parse(R"(["cluster-admin", "ClusterRole/cluster-admin", "2d", "", "system:masters", ""])"));
  // Roles: NAME and CREATED AT (RFC 3339 in UTC), as printRole.
  EXPECT_EQ(cells("rbac.authorization.k8s.io", "ClusterRole", R"({
    "metadata": {"name": "view", "creationTimestamp": "2025-01-13T12:00:00Z"}, "rules": []})"),
            parse(R"(["view", "2025-01-13T12:00:00Z"])"));
  EXPECT_EQ(cells("rbac.authorization.k8s.io", "Role", R"({"metadata": {"name": "r"}})"),
            parse(R"(["r", "0001-01-01T00:00:00Z"])"));
}

}  // namespace
}  // namespace podwarp::tables
