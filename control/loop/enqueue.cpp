#include "loop/enqueue.h"

#include <fmt/format.h>

#include "podwarp/selector.h"

namespace podwarp::loop {

void on_object_change(SharedInformers& informers, const api::Resource& res,
                      std::function<void(const json::value&)> f, bool deletes) {
  informers.on_add(res, f);
  informers.on_update(res, [f](const json::value&, const json::value& obj) { f(obj); });
  if (deletes) informers.on_delete(res, std::move(f));
}

const json::value* controller_ref_to(const json::value& obj, std::string_view kind,
                                     std::string_view group) {
  const json::value* refs = find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return nullptr;
  for (const json::value& r : refs->get_array()) {
    if (!r.is_object() || !get_bool(r, {"controller"})) continue;
    if (get_string(r, {"kind"}) != kind) return nullptr;
    if (!group.empty()) {
      std::string_view av = get_string(r, {"apiVersion"});
      if (av.size() <= group.size() || !av.starts_with(group) || av[group.size()] != '/') {
        return nullptr;
      }
    }
    return &r;
  }
  return nullptr;
}

std::string controller_key(const json::value& obj, std::string_view kind, std::string_view group) {
  const json::value* ref = controller_ref_to(obj, kind, group);
  if (ref == nullptr) return {};
  return fmt::format("{}/{}", get_string(obj, {"metadata", "namespace"}),
                     get_string(*ref, {"name"}));
}

ObjectPtr cached_controller(const client::Informer& owners, const json::value& obj,
                            std::string_view kind) {
  const json::value* ref = controller_ref_to(obj, kind);
  if (ref == nullptr) return nullptr;
  ObjectPtr owner =
      owners.get(get_string(obj, {"metadata", "namespace"}), get_string(*ref, {"name"}));
  if (!owner || get_string(*owner, {"metadata", "uid"}) != get_string(*ref, {"uid"})) {
    return nullptr;
  }
  return owner;
}

void for_each_selecting(const client::Informer& owners, const json::value& obj,
                        const std::function<void(const json::value&)>& f) {
  std::string_view ns = get_string(obj, {"metadata", "namespace"});
  for (const ObjectPtr& owner : owners.list()) {
    if (get_string(*owner, {"metadata", "namespace"}) != ns) continue;
    const json::value* sel = find_path(*owner, {"spec", "selector"});
    if (!sel) continue;
    auto s = LabelSelector::from_json(*sel);
    if (s && !s->empty() && s->matches(obj)) f(*owner);
  }
}

}  // namespace podwarp::loop
