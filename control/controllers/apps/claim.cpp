#include "controllers/apps/claim.h"

#include "controllers/apps/pod_control.h"

namespace podwarp::apps {

std::vector<ObjectPtr> pods_in(const client::Informer& pods, std::string_view ns) {
  std::vector<ObjectPtr> out;
  for (ObjectPtr& p : pods.list()) {
    if (namespace_of(*p) == ns) out.push_back(std::move(p));
  }
  return out;
}

Awaitable<Result<std::vector<ObjectPtr>>> claim_pods(client::Client client, json::value owner,
                                                     std::string kind, LabelSelector selector,
                                                     std::vector<ObjectPtr> candidates,
                                                     bool include_inactive) {
  std::vector<ObjectPtr> out;
  const bool deleting = being_deleted(owner);
  for (ObjectPtr& p : candidates) {
    if (!include_inactive && !pod_active(*p)) continue;
    const json::object* ref = controller_ref(*p);
    const bool matches = selector.matches(*p);
    if (ref) {
      const json::value* u = ref->if_contains("uid");
      if (!u || !u->is_string() || u->get_string() != uid_of(owner)) continue;
      if (matches) {
        out.push_back(std::move(p));
      } else if (!deleting) {
        json::array refs;
        for (const json::value& r : find_path(*p, {"metadata", "ownerReferences"})->get_array()) {
          if (get_string(r, {"uid"}) != uid_of(owner)) refs.push_back(r);
        }
        auto r = co_await patch_owner_refs(client, *p, std::move(refs));
        if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
      }
    } else if (matches && !deleting && !being_deleted(*p)) {
      json::array refs;
      if (const json::value* old = find_path(*p, {"metadata", "ownerReferences"});
          old && old->is_array()) {
        refs = old->get_array();
      }
      refs.push_back(make_controller_ref(owner, "apps/v1", kind));
      auto r = co_await patch_owner_refs(client, *p, std::move(refs));
      if (!r) {
        if (r.error().is_not_found()) continue;
        co_return std::unexpected(r.error());
      }
      out.push_back(std::make_shared<const json::value>(std::move(*r)));
    }
  }
  co_return out;
}

}  // namespace podwarp::apps
